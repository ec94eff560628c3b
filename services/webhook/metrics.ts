/**
 * The webhook's Prometheus metrics, rendered in the text exposition format
 * (version 0.0.4) on GET /metrics.
 */

export type Endpoint = "/mutate-pod" | "/mutate-vm";

/** How a review ended. */
export type Outcome =
  | "patched" // allowed with a patch
  | "unchanged" // allowed without a patch
  | "malformed" // 400: not a JSON AdmissionReview
  | "too_large" // 413: body above maxRequestBytes
  | "error"; // an unexpected failure; allowed unchanged

/** Latency buckets in seconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export interface WebhookMetrics {
  review(endpoint: Endpoint, outcome: Outcome, seconds: number): void;
  injection(what: "sidecar" | "serial", mode: string): void;
  error(endpoint: Endpoint, reason: string): void;
  warning(endpoint: Endpoint): void;
  certificateLoaded(notAfter: Date): void;
  certificateReloadFailed(): void;
  render(): string;
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([name, value]) =>
    `${name}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function counterFamily() {
  const values = new Map<string, number>();
  const keys2 = new Map<string, Map<string, string>>();
  return {
    add(labels: Record<string, string>, amount = 1) {
      const key = labelText(labels);
      values.set(key, (values.get(key) ?? 0) + amount);
    },
    /** Adds one to the series of one or two labels; their text is built only the first time. */
    increment(first: string, firstValue: string, second?: string, secondValue = "") {
      let byFirst = keys2.get(firstValue);
      if (byFirst === undefined) keys2.set(firstValue, byFirst = new Map());
      let key = byFirst.get(secondValue);
      if (key === undefined) {
        key = labelText(
          second ? { [first]: firstValue, [second]: secondValue } : { [first]: firstValue },
        );
        byFirst.set(secondValue, key);
      }
      values.set(key, (values.get(key) ?? 0) + 1);
    },
    lines(name: string): string[] {
      return [...values].map(([labels, value]) => `${name}${labels} ${value}`);
    },
  };
}

export function createMetrics(): WebhookMetrics {
  const reviews = counterFamily();
  const injections = counterFamily();
  const errors = counterFamily();
  const warnings = counterFamily();
  const reloads = counterFamily();
  /** Per endpoint: reviews per bucket (not cumulative; added up when rendered). */
  const histograms = new Map<Endpoint, { buckets: number[]; sum: number; count: number }>();
  let notAfterSeconds: number | undefined;

  return {
    review(endpoint, outcome, seconds) {
      // Label text is built once per endpoint and outcome, not per review.
      reviews.increment("endpoint", endpoint, "outcome", outcome);
      let histogram = histograms.get(endpoint);
      if (!histogram) {
        histogram = { buckets: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
        histograms.set(endpoint, histogram);
      }
      let index = 0;
      while (index < LATENCY_BUCKETS.length && !(seconds <= LATENCY_BUCKETS[index])) index++;
      if (index < LATENCY_BUCKETS.length) histogram.buckets[index]++;
      histogram.sum += seconds;
      histogram.count++;
    },
    injection(what, mode) {
      injections.increment("what", what, "mode", mode);
    },
    error(endpoint, reason) {
      errors.increment("endpoint", endpoint, "reason", reason);
    },
    warning(endpoint) {
      warnings.increment("endpoint", endpoint);
    },
    certificateLoaded(notAfter) {
      reloads.add({ result: "success" });
      notAfterSeconds = Math.floor(notAfter.getTime() / 1000);
    },
    certificateReloadFailed() {
      reloads.add({ result: "failure" });
    },
    render() {
      const lines: string[] = [
        "# HELP imds_webhook_reviews_total AdmissionReviews answered, by endpoint and outcome.",
        "# TYPE imds_webhook_reviews_total counter",
        ...reviews.lines("imds_webhook_reviews_total"),
        "# HELP imds_webhook_review_duration_seconds Time to answer an AdmissionReview.",
        "# TYPE imds_webhook_review_duration_seconds histogram",
      ];
      for (const [endpoint, histogram] of histograms) {
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((bound, index) => {
          cumulative += histogram.buckets[index];
          lines.push(
            `imds_webhook_review_duration_seconds_bucket${
              labelText({ endpoint, le: String(bound) })
            } ${cumulative}`,
          );
        });
        lines.push(
          `imds_webhook_review_duration_seconds_bucket${
            labelText({ endpoint, le: "+Inf" })
          } ${histogram.count}`,
          `imds_webhook_review_duration_seconds_sum${labelText({ endpoint })} ${histogram.sum}`,
          `imds_webhook_review_duration_seconds_count${labelText({ endpoint })} ${histogram.count}`,
        );
      }
      lines.push(
        "# HELP imds_webhook_injections_total Sidecars injected into pods and serials set on VMs.",
        "# TYPE imds_webhook_injections_total counter",
        ...injections.lines("imds_webhook_injections_total"),
        "# HELP imds_webhook_errors_total Requests that failed: malformed or oversized bodies, internal errors.",
        "# TYPE imds_webhook_errors_total counter",
        ...errors.lines("imds_webhook_errors_total"),
        "# HELP imds_webhook_warnings_total AdmissionResponses that carried warnings.",
        "# TYPE imds_webhook_warnings_total counter",
        ...warnings.lines("imds_webhook_warnings_total"),
        "# HELP imds_webhook_certificate_reloads_total Serving certificate loads, by result.",
        "# TYPE imds_webhook_certificate_reloads_total counter",
        ...reloads.lines("imds_webhook_certificate_reloads_total"),
      );
      if (notAfterSeconds !== undefined) {
        lines.push(
          "# HELP imds_webhook_certificate_expiry_timestamp_seconds When the serving certificate expires (Unix time).",
          "# TYPE imds_webhook_certificate_expiry_timestamp_seconds gauge",
          `imds_webhook_certificate_expiry_timestamp_seconds ${notAfterSeconds}`,
        );
      }
      return lines.join("\n") + "\n";
    },
  };
}
