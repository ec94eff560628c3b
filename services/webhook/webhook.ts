/** Starts the webhook: certificate store, metrics, endpoints and the HTTPS listener. */

import type { Logger } from "../shared/log.ts";
import { type CertificateStore, openCertificateStore } from "./certificates.ts";
import type { WebhookConfig } from "./config.ts";
import { startHttpsServer } from "./https_server.ts";
import { createMetrics, type WebhookMetrics } from "./metrics.ts";
import { createReviewGate, reviewBudget } from "./review_gate.ts";
import { createWebhookApp } from "./routes.ts";

export interface RunningWebhook {
  addr: Deno.NetAddr;
  metrics: WebhookMetrics;
  certificates: CertificateStore;
  /**
   * Reports not ready and keeps serving for `drainMs` (so the API server stops
   * sending reviews here), then closes the listener and lets requests in
   * flight finish for at most `graceMs`.
   */
  shutdown(options?: { drainMs?: number; graceMs?: number }): Promise<void>;
}

/** Throws a ConfigError (naming --tls-cert or --tls-key) when the certificate does not load. */
export async function startWebhook(
  config: WebhookConfig,
  log: Logger,
  options: { certificateCheckIntervalMs?: number } = {},
): Promise<RunningWebhook> {
  const metrics = createMetrics();
  const certificates = openCertificateStore({
    certPath: config.tlsCertPath,
    keyPath: config.tlsKeyPath,
    log,
    onLoad: (certificate) => metrics.certificateLoaded(certificate.notAfter),
    onFailure: () => metrics.certificateReloadFailed(),
    checkIntervalMs: options.certificateCheckIntervalMs,
  });
  let stopping = false;
  const handler = createWebhookApp({
    settings: config,
    maxRequestBytes: config.maxRequestBytes,
    metrics,
    log,
    notReadyReason: () => stopping ? "shutting down" : undefined,
  });
  const budget = reviewBudget(config.memoryLimitBytes);
  let server;
  try {
    server = await startHttpsServer({
      hostname: config.listen.hostname,
      port: config.listen.port,
      certificate: () => certificates.refresh().context,
      handler,
      log,
      gate: { reviews: createReviewGate(budget), maxRequestBytes: config.maxRequestBytes },
    });
  } catch (error) {
    certificates.stop();
    throw error;
  }
  log.info("webhook listening", {
    address: `${server.addr.hostname}:${server.addr.port}`,
    sidecarImage: config.sidecar.image,
    nativeSidecar: config.sidecar.nativeSidecar,
    vmSerialInjection: config.vmSerialInjection,
    memoryLimitBytes: config.memoryLimitBytes,
    reviewBytesInProgress: budget.bytesInProgress,
  });
  return {
    addr: server.addr,
    metrics,
    certificates,
    async shutdown({ drainMs = 0, graceMs = 10_000 } = {}) {
      stopping = true;
      if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
      certificates.stop();
      await server.shutdown(graceMs);
    },
  };
}
