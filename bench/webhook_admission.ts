/**
 * The admission webhook over TLS against bare TLS servers echoing the same
 * AdmissionReview, in the same run: latency p50/p99 at 50 concurrent reviews
 * and throughput as a ratio to the baselines. The review is a real
 * virt-launcher pod that gets the sidecar injected (the full mutation path).
 * Baselines: Deno.serve (the client negotiates HTTP/2 with it) and node:https
 * (HTTP/1.1, the webhook's own transport), so the ratios separate the cost of
 * the transport from the cost of the webhook's work. The servers' CPU time per
 * request (from /proc) is the figure least disturbed by other load on the
 * machine; the load generator shares the machine's cores with the server.
 */

import { makeCertificate, secretVolume } from "../services/webhook/testing/certificates.ts";
import {
  cpuMs,
  fixed,
  freePort,
  loadAtConcurrency,
  loadAtRate,
  type LoadResult,
  printTable,
  rssMiB,
  sampleRss,
  type ServerProcess,
  startServer,
} from "./lib.ts";

const ROUNDS = 5;
const CONCURRENCY = 50;
const LOAD_MS = 3000;
const WARMUP_MS = 300;
/** A steady rate, for the latency of one review when the server is not saturated. */
const RATE = 200;
const RATE_MS = 1500;
const root = new URL("..", import.meta.url).pathname;

type Target = "webhook" | "bare Deno.serve" | "bare node:https";

const pod = JSON.parse(
  await Deno.readTextFile(`${root}services/webhook/fixtures/pod_masquerade.json`),
);
const review = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "5f0c3f4e-bench",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    operation: "CREATE",
    namespace: "vms",
    userInfo: { username: "system:serviceaccount:kubevirt:kubevirt-controller" },
    object: pod,
  },
});

const certificate = await makeCertificate("imds-webhook-bench");
const volume = await secretVolume(certificate);

function start(target: Target, port: number): Promise<ServerProcess> {
  if (target === "webhook") {
    return startServer({
      args: [
        "run",
        "-A",
        `${root}services/webhook/main.ts`,
        `--listen=127.0.0.1:${port}`,
        `--tls-cert=${volume.certPath}`,
        `--tls-key=${volume.keyPath}`,
        "--sidecar-image=ghcr.io/kubevirt-imds/sidecar:0.1.0",
      ],
      port,
    });
  }
  return startServer({
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      `${root}bench/bare_tls_echo.ts`,
      target === "bare Deno.serve" ? "deno" : "node",
      String(port),
      volume.certPath,
      volume.keyPath,
    ],
    port,
  });
}

interface Measurement {
  load: LoadResult;
  /** Server CPU time per request under the concurrent load, in microseconds. */
  cpuPerRequest: number;
  steady: LoadResult;
  rss: number;
  idleRss: number;
}

interface Running {
  server: ServerProcess;
  client: Deno.HttpClient;
  url: string;
  idleRss: number;
}

const targets: Target[] = ["bare Deno.serve", "webhook", "bare node:https"];
const running = new Map<Target, Running>();
const results = new Map<Target, Measurement[]>();
const request = (target: Target) => ({
  url: running.get(target)!.url,
  method: "POST",
  body: review,
  headers: { "content-type": "application/json" },
  client: running.get(target)!.client,
});

try {
  // All three stay up; the rounds alternate between them so that drift in
  // the machine's load hits each about equally.
  for (const target of targets) {
    const port = freePort();
    const server = await start(target, port);
    running.set(target, {
      server,
      client: Deno.createHttpClient({ caCerts: [certificate.caPem] }),
      url: `https://localhost:${port}${target === "webhook" ? "/mutate-pod" : "/"}`,
      idleRss: rssMiB(server.pid),
    });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const { pid } = running.get(target)!.server;
      await loadAtConcurrency({
        ...request(target),
        concurrency: CONCURRENCY,
        durationMs: WARMUP_MS,
      });
      const rss = sampleRss(pid);
      const cpuBefore = cpuMs(pid);
      const load = await loadAtConcurrency({
        ...request(target),
        concurrency: CONCURRENCY,
        durationMs: LOAD_MS,
      });
      const cpuPerRequest = (cpuMs(pid) - cpuBefore) * 1000 / load.requests;
      const peakRss = rss.stop();
      const steady = await loadAtRate({ ...request(target), rate: RATE, durationMs: RATE_MS });
      const list = results.get(target) ?? [];
      list.push({
        load,
        cpuPerRequest,
        steady,
        rss: peakRss,
        idleRss: running.get(target)!.idleRss,
      });
      results.set(target, list);
    }
  }
} finally {
  for (const { server, client } of running.values()) {
    client.close();
    await server.stop();
  }
  await volume.remove();
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

/** The round with the median throughput. */
function typical(target: Target): Measurement {
  const list = [...results.get(target)!].sort((a, b) =>
    a.load.requestsPerSecond - b.load.requestsPerSecond
  );
  return list[list.length >> 1];
}

/** webhook ÷ target throughput, round by round (the servers of a round run back to back). */
function ratios(target: Target): number[] {
  const webhook = results.get("webhook")!;
  return results.get(target)!.map((measurement, round) =>
    webhook[round].load.requestsPerSecond / measurement.load.requestsPerSecond
  );
}

const rows = targets.map((target) => {
  const { load, steady, rss, idleRss } = typical(target);
  return [
    target,
    fixed(load.requestsPerSecond, 0),
    fixed(load.latencies.p50),
    fixed(load.latencies.p99),
    String(load.errors + steady.errors),
    fixed(median(results.get(target)!.map((measurement) => measurement.cpuPerRequest)), 0),
    fixed(steady.latencies.p50),
    fixed(steady.latencies.p99),
    fixed(idleRss, 1),
    fixed(rss, 1),
    target === "webhook"
      ? "1.00"
      : `${fixed(median(ratios(target)))} (${
        ratios(target).map((ratio) => fixed(ratio)).join(" ")
      })`,
  ];
});
printTable(
  `Webhook admission over TLS: ${CONCURRENCY} concurrent reviews (${
    (new TextEncoder().encode(review).byteLength / 1024).toFixed(1)
  } KiB pod, sidecar injected) for ${LOAD_MS / 1000} s, then ${RATE} reviews/s for ${
    RATE_MS / 1000
  } s; median of ${ROUNDS} rounds`,
  [
    "server",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU µs/req",
    `p50 ms @${RATE}/s`,
    `p99 ms @${RATE}/s`,
    "idle RSS MiB",
    "peak RSS MiB",
    "webhook ÷ this (per round)",
  ],
  rows,
);
const webhook = typical("webhook");
const ratio = median(ratios("bare Deno.serve"));
console.log(
  `targets: webhook p99 ${fixed(webhook.load.latencies.p99)} ms at ${CONCURRENCY} concurrent, ${
    fixed(webhook.steady.latencies.p99)
  } ms at ${RATE}/s (target <= 5 ms); throughput ${
    fixed(ratio)
  }x bare Deno.serve (target >= 0.70): ${ratio >= 0.7 ? "met" : "NOT met"}`,
);
