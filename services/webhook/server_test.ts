/**
 * The webhook over real HTTPS on 127.0.0.1 with certificates made by openssl:
 * every endpoint, every kind of bad request, and a certificate renewal
 * swapped in on disk the way the kubelet does it.
 */
import jsonpatch from "fast-json-patch";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";
import { createLogger, type LogLevel } from "../shared/log.ts";
import { envFrom } from "../shared/settings.ts";
import { loadWebhookConfig, type WebhookConfig } from "./config.ts";
import type { JsonObject } from "./json_patch.ts";
import { createMetrics } from "./metrics.ts";
import { createWebhookApp, fromWebRequest } from "./routes.ts";
import {
  makeCertificate,
  secretVolume,
  type TestCertificate,
} from "../../testing/webhook_certificates.ts";
import { podSchemaProblems } from "../../testing/pod_schema.ts";
import { startWebhook } from "./webhook.ts";

function config(certPath: string, keyPath: string, file: JsonObject = {}): WebhookConfig {
  const loaded = loadWebhookConfig({
    args: [
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      certPath,
      "--tls-key",
      keyPath,
      "--sidecar-image",
      "ghcr.io/kubevirt-imds/sidecar:0.1.0",
      "--config",
      "inline",
    ],
    env: envFrom({}),
    readFile: () => JSON.stringify(file),
  });
  if (loaded.help) throw new Error("unexpected help");
  return loaded.config;
}

function fixture(name: string): JsonObject {
  return JSON.parse(Deno.readTextFileSync(new URL(`./fixtures/${name}.json`, import.meta.url)));
}

function review(
  uid: string,
  kind: { group: string; version: string; kind: string },
  object: unknown,
  operation = "CREATE",
) {
  const metadata = (object as { metadata?: { namespace?: string } } | undefined)?.metadata;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind,
      resource: {
        group: kind.group,
        version: kind.version,
        resource: kind.kind.toLowerCase() + "s",
      },
      operation,
      namespace: metadata?.namespace ?? "default",
      userInfo: { username: "system:serviceaccount:kubevirt:kubevirt-controller" },
      object,
      dryRun: false,
    },
  };
}

const POD = { group: "", version: "v1", kind: "Pod" };
const VM = { group: "kubevirt.io", version: "v1", kind: "VirtualMachine" };

interface Harness {
  url: string;
  client: Deno.HttpClient;
  certificate: TestCertificate;
  volume: Awaited<ReturnType<typeof secretVolume>>;
  logs: Record<string, unknown>[];
  port: number;
  close(): Promise<void>;
}

async function harness(file: JsonObject = {}): Promise<Harness> {
  const certificate = await makeCertificate();
  const volume = await secretVolume(certificate);
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    component: "webhook",
    level: "debug" as LogLevel,
    sink: (line) => logs.push(JSON.parse(line)),
  });
  const webhook = await startWebhook(config(volume.certPath, volume.keyPath, file), log);
  const client = Deno.createHttpClient({ caCerts: [certificate.caPem] });
  return {
    url: `https://127.0.0.1:${webhook.addr.port}`,
    port: webhook.addr.port,
    client,
    certificate,
    volume,
    logs,
    async close() {
      client.close();
      await webhook.shutdown({ graceMs: 1000 });
      await volume.remove();
    },
  };
}

async function post(h: Harness, path: string, body: unknown) {
  const response = await fetch(`${h.url}${path}`, {
    method: "POST",
    client: h.client,
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

function decodePatch(patch: string): jsonpatch.Operation[] {
  const bytes = Uint8Array.from(atob(patch), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

Deno.test("HTTPS: a virt-launcher pod review comes back allowed with a patch that yields a valid pod", async () => {
  const h = await harness();
  try {
    const pod = fixture("pod_masquerade");
    // The API server adds ?timeout= to the webhook's path.
    const { status, body } = await post(
      h,
      "/mutate-pod?timeout=10s",
      review("0b4e-pod-1", POD, pod),
    );
    assertEquals(status, 200);
    assertEquals(body.apiVersion, "admission.k8s.io/v1");
    assertEquals(body.kind, "AdmissionReview");
    assertEquals(body.response.uid, "0b4e-pod-1");
    assertEquals(body.response.allowed, true);
    assertEquals(body.response.patchType, "JSONPatch");
    assertEquals(body.response.warnings, undefined);
    const operations = decodePatch(body.response.patch);
    assertEquals(operations.map((operation) => operation.path), [
      "/spec/initContainers/-",
      "/spec/volumes/-",
      "/spec/volumes/-",
      "/spec/volumes/-",
      "/spec/volumes/-",
    ]);
    const patched = jsonpatch.applyPatch(structuredClone(pod), operations).newDocument;
    assertEquals(podSchemaProblems(patched), []);

    // Reinvocation on the patched pod: allowed, no patch.
    const again = await post(h, "/mutate-pod", review("0b4e-pod-2", POD, patched));
    assertEquals(again.body.response, { uid: "0b4e-pod-2", allowed: true });

    // One structured log line per review, in words an operator reads.
    const line = h.logs.find((entry) => entry.uid === "0b4e-pod-1")!;
    assertEquals(
      [line.msg, line.outcome, line.kind, line.namespace, line.name, line.reason],
      [
        "review answered",
        "patched",
        "v1 Pod",
        "vms",
        "virt-launcher-fedora-imds-",
        "native sidecar injected",
      ],
    );
    assertEquals(typeof line.durationMs, "number");
  } finally {
    await h.close();
  }
});

Deno.test("HTTPS: /mutate-vm sets the serial on an opted-in VirtualMachine", async () => {
  const h = await harness();
  try {
    const { status, body } = await post(h, "/mutate-vm", review("vm-1", VM, fixture("vm_fedora")));
    assertEquals(status, 200);
    assertEquals(decodePatch(body.response.patch), [{
      op: "add",
      path: "/spec/template/spec/domain/firmware",
      value: { serial: "ds=nocloud;s=http://169.254.169.254/v1/;dsmode=net" },
    }]);
    const off = await harness({ vmSerialInjection: false });
    try {
      const result = await post(off, "/mutate-vm", review("vm-2", VM, fixture("vm_fedora")));
      assertEquals(result.body.response, { uid: "vm-2", allowed: true });
    } finally {
      await off.close();
    }
  } finally {
    await h.close();
  }
});

Deno.test("HTTPS: bad requests get the right status and a JSON message, and the server keeps serving", async () => {
  const h = await harness({ maxRequestBytes: 64 * 1024 });
  try {
    const expectError = async (
      response: Promise<Response>,
      status: number,
      code: string,
      message: RegExp,
    ) => {
      const answer = await response;
      assertEquals(answer.status, status);
      assertEquals(answer.headers.get("content-type"), "application/json");
      const body = await answer.json();
      assertEquals(body.error, code);
      assertMatch(body.message, message);
      return answer;
    };
    const postRaw = (path: string, body: BodyInit) =>
      fetch(`${h.url}${path}`, { method: "POST", body, client: h.client });

    await expectError(postRaw("/mutate-pod", "{not json"), 400, "malformed_json", /not valid JSON/);
    await expectError(postRaw("/mutate-pod", "[]"), 400, "not_admission_review", /AdmissionReview/);
    await expectError(
      postRaw(
        "/mutate-vm",
        JSON.stringify({ ...review("u", VM, {}), apiVersion: "admission.k8s.io/v1beta1" }),
      ),
      400,
      "not_admission_review",
      /admissionReviewVersions/,
    );
    await expectError(
      postRaw(
        "/mutate-pod",
        JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
      ),
      400,
      "missing_request",
      /no request/,
    );
    await expectError(
      postRaw("/mutate-pod", JSON.stringify({ ...review("", POD, {}) })),
      400,
      "missing_uid",
      /no uid/,
    );
    const big = JSON.stringify(review("big", POD, { pad: "x".repeat(70 * 1024) }));
    await expectError(
      postRaw("/mutate-pod", big),
      413,
      "request_too_large",
      /maxRequestBytes \(65536 bytes\)/,
    );
    // Without a Content-Length (chunked), the limit applies while reading.
    const chunked = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("x".repeat(8192)));
        controller.close();
      },
    });
    await expectError(postRaw("/mutate-pod", chunked), 413, "request_too_large", /maxRequestBytes/);
    const get = await expectError(
      fetch(`${h.url}/mutate-pod`, { client: h.client }),
      405,
      "method_not_allowed",
      /accepts POST, not GET/,
    );
    assertEquals(get.headers.get("allow"), "POST");
    await expectError(
      postRaw("/healthz", "{}"),
      405,
      "method_not_allowed",
      /accepts GET, HEAD, not POST/,
    );
    await expectError(
      fetch(`${h.url}/mutate`, { client: h.client }),
      404,
      "not_found",
      /no endpoint at \/mutate/,
    );

    // Wrong kinds and unexpected objects: allowed, unchanged, with a warning.
    const deployment = await post(
      h,
      "/mutate-pod",
      review("d-1", { group: "apps", version: "v1", kind: "Deployment" }, { metadata: {} }),
    );
    assertEquals(deployment.status, 200);
    assertEquals(deployment.body.response, {
      uid: "d-1",
      allowed: true,
      warnings: ["/mutate-pod handles v1 Pods, got apps/v1 Deployment; nothing was changed"],
    });
    const podToVm = await post(h, "/mutate-vm", review("p-1", POD, fixture("pod_masquerade")));
    assertEquals(podToVm.body.response.allowed, true);
    assertEquals(podToVm.body.response.patch, undefined);
    assertStringIncludes(podToVm.body.response.warnings[0], "got v1 Pod");
    const noObject = await post(h, "/mutate-pod", review("n-1", POD, "just a string"));
    assertEquals(noObject.body.response, {
      uid: "n-1",
      allowed: true,
      warnings: ["the request carries no pod object; nothing was changed"],
    });
    const update = await post(
      h,
      "/mutate-pod",
      review("up-1", POD, fixture("pod_masquerade"), "UPDATE"),
    );
    assertEquals(update.body.response, { uid: "up-1", allowed: true });

    const health = await fetch(`${h.url}/healthz`, { client: h.client });
    assertEquals([health.status, await health.json()], [200, { status: "ok" }]);
    const ready = await fetch(`${h.url}/readyz`, { client: h.client });
    assertEquals([ready.status, await ready.json()], [200, { status: "ready" }]);

    const metrics = await (await fetch(`${h.url}/metrics`, { client: h.client })).text();
    for (
      const line of [
        'imds_webhook_reviews_total{endpoint="/mutate-pod",outcome="malformed"} 4',
        'imds_webhook_reviews_total{endpoint="/mutate-vm",outcome="malformed"} 1',
        'imds_webhook_reviews_total{endpoint="/mutate-pod",outcome="too_large"} 2',
        'imds_webhook_reviews_total{endpoint="/mutate-pod",outcome="unchanged"} 3',
        'imds_webhook_errors_total{endpoint="/mutate-pod",reason="too_large"} 2',
        'imds_webhook_errors_total{endpoint="/mutate-pod",reason="malformed_json"} 1',
        'imds_webhook_warnings_total{endpoint="/mutate-pod"} 2',
        'imds_webhook_review_duration_seconds_count{endpoint="/mutate-pod"} 9',
        'imds_webhook_certificate_reloads_total{result="success"} 1',
      ]
    ) assertStringIncludes(metrics, line + "\n");
    assertMatch(metrics, /^imds_webhook_certificate_expiry_timestamp_seconds \d{10}$/m);
  } finally {
    await h.close();
  }
});

/** Whether a fresh TLS connection trusting only `caPem` completes its handshake. */
async function handshakeTrusting(port: number, caPem: string): Promise<boolean> {
  try {
    const connection = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
    try {
      await connection.handshake();
      return true;
    } finally {
      connection.close();
    }
  } catch {
    return false;
  }
}

Deno.test("HTTPS: a renewed certificate swapped in on disk is served from the next handshake on", async () => {
  const h = await harness();
  try {
    const renewed = await makeCertificate("imds-webhook-renewed");
    assertEquals(await handshakeTrusting(h.port, h.certificate.caPem), true);
    assertEquals(await handshakeTrusting(h.port, renewed.caPem), false);

    // A keep-alive connection opened before the swap.
    const before = await fetch(`${h.url}/healthz`, { client: h.client });
    assertEquals(before.status, 200);
    await before.body?.cancel();

    await h.volume.swap(renewed);
    assertEquals(
      await handshakeTrusting(h.port, renewed.caPem),
      true,
      "the next handshake has the new certificate",
    );
    assertEquals(
      await handshakeTrusting(h.port, h.certificate.caPem),
      false,
      "the old one is gone",
    );
    // The connection from before the swap still answers: nothing was dropped.
    const after = await post(h, "/mutate-vm", review("vm-after-swap", VM, fixture("vm_fedora")));
    assertEquals(after.status, 200);
    assert(
      h.logs.some((entry) =>
        entry.msg === "serving certificate renewed; new connections get the new one"
      ),
    );

    // A broken pair (key from another certificate) does not replace the good one.
    const other = await makeCertificate("unrelated");
    await h.volume.swap({ certPem: other.certPem, keyPem: renewed.keyPem });
    assertEquals(
      await handshakeTrusting(h.port, renewed.caPem),
      true,
      "still the renewed certificate",
    );
    assert(
      h.logs.some((entry) =>
        typeof entry.problem === "string" && /does not match/.test(entry.problem)
      ),
    );
    const client = Deno.createHttpClient({ caCerts: [renewed.caPem] });
    try {
      const metrics = await (await fetch(`${h.url}/metrics`, { client })).text();
      assertStringIncludes(metrics, 'imds_webhook_certificate_reloads_total{result="success"} 2\n');
      assertStringIncludes(metrics, 'imds_webhook_certificate_reloads_total{result="failure"} 1\n');
    } finally {
      client.close();
    }
  } finally {
    await h.close();
  }
});

Deno.test("app: an internal failure is allowed unchanged with a warning; /readyz reports not ready", async () => {
  const broken = structuredClone(config("/c", "/k")) as WebhookConfig;
  // A settings object the validated config can never hold, to make the mutation throw.
  (broken.token as { audiences: unknown }).audiences = null;
  let notReady: string | undefined = "shutting down";
  const logs: string[] = [];
  const app = createWebhookApp({
    settings: broken,
    maxRequestBytes: 1 << 20,
    metrics: createMetrics(),
    log: createLogger({ component: "webhook", sink: (line) => logs.push(line) }),
    notReadyReason: () => notReady,
  });
  const response = await app(fromWebRequest(
    new Request("https://webhook/mutate-pod", {
      method: "POST",
      body: JSON.stringify(review("boom", POD, fixture("pod_masquerade"))),
    }),
  ));
  assertEquals(response.status, 200);
  const body = JSON.parse(response.body);
  assertEquals(body.response.allowed, true);
  assertEquals(body.response.patch, undefined);
  assertMatch(body.response.warnings[0], /^the metadata service webhook failed on this object/);
  assert(logs.some((line) => JSON.parse(line).outcome === "error"));

  const notReadyResponse = await app(fromWebRequest(new Request("https://webhook/readyz")));
  assertEquals(notReadyResponse.status, 503);
  assertEquals(JSON.parse(notReadyResponse.body), { error: "not_ready", message: "shutting down" });
  notReady = undefined;
  assertEquals((await app(fromWebRequest(new Request("https://webhook/readyz")))).status, 200);
});

Deno.test("HTTPS: reviews keep succeeding on new and old connections while the certificate is renewed", async () => {
  const h = await harness();
  const renewed = await makeCertificate("imds-webhook-renewed");
  // No idle pooling: nearly every request makes a new TLS handshake.
  const fresh = Deno.createHttpClient({
    caCerts: [h.certificate.caPem, renewed.caPem],
    poolMaxIdlePerHost: 0,
  });
  const body = JSON.stringify(review("during-swap", POD, fixture("pod_masquerade")));
  let stop = false;
  const statuses: (number | string)[] = [];
  const sendReviews = async (client: Deno.HttpClient) => {
    while (!stop) {
      try {
        const response = await fetch(`${h.url}/mutate-pod`, { method: "POST", body, client });
        await response.arrayBuffer();
        statuses.push(response.status);
      } catch (error) {
        statuses.push(String(error));
      }
    }
  };
  try {
    const senders = [
      ...Array.from({ length: 4 }, () => sendReviews(fresh)),
      ...Array.from({ length: 2 }, () => sendReviews(h.client)), // kept-alive connections
    ];
    while (statuses.length < 20) await new Promise((resolve) => setTimeout(resolve, 5));
    await h.volume.swap(renewed);
    const atSwap = statuses.length;
    while (statuses.length < atSwap + 40) await new Promise((resolve) => setTimeout(resolve, 5));
    stop = true;
    await Promise.all(senders);
    assertEquals(statuses.filter((status) => status !== 200), [], "no request failed");
    assertEquals(await handshakeTrusting(h.port, renewed.caPem), true);
  } finally {
    stop = true;
    fresh.close();
    await h.close();
  }
});
