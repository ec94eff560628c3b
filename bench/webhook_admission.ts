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
 *
 * The 50-concurrent closed loop saturates the two shared cores, so its
 * latency is mostly queueing (about concurrency ÷ throughput) for every
 * server. The open-loop rows are the load an API server sends: 50 clients,
 * one connection each, together sending a fixed total rate (500 and 1000
 * reviews/s), each server at the same load, compared as ratios. These clients
 * speak HTTP/1.1 to every server: over HTTP/2, Deno.serve answered a lone
 * request on a connection tens of milliseconds late (p50 44 ms at 500/s), so
 * the rows would measure that stall instead of the servers' work.
 */

import { podCreateReview } from "../testing/admission_review.ts";
import { makeCertificate, secretVolume } from "../testing/webhook_certificates.ts";
import {
  cpuMs,
  fixed,
  loadAtConcurrency,
  loadAtRate,
  loadAtRateOverClients,
  type LoadResult,
  median,
  printTable,
  repositoryRoot as root,
  rssMiB,
  sampleRss,
  verdict,
} from "./lib.ts";
import { freePort, type ServerProcess, startServer } from "../testing/processes.ts";

const ROUNDS = 5;
const CONCURRENCY = 50;
const LOAD_MS = 3000;
const WARMUP_MS = 300;
/** A steady rate, for the latency of one review when the server is not saturated. */
const RATE = 200;
const RATE_MS = 1500;
/** Fixed total rates over CONCURRENCY connections (open loop, not saturating). */
const OPEN_RATES = [500, 1000];
const OPEN_MS = 800;

type Target = "webhook" | "bare Deno.serve" | "bare node:https";

const pod = JSON.parse(
  await Deno.readTextFile(`${root}services/webhook/fixtures/pod_masquerade.json`),
);
const review = JSON.stringify(podCreateReview(pod, {
  uid: "5f0c3f4e-bench",
  userInfo: { username: "system:serviceaccount:kubevirt:kubevirt-controller" },
}));

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
  /** One result per OPEN_RATES entry. */
  open: LoadResult[];
}

interface Running {
  server: ServerProcess;
  client: Deno.HttpClient;
  /** CONCURRENCY clients, one connection each, for the open-loop load. */
  clients: Deno.HttpClient[];
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
      clients: Array.from(
        { length: CONCURRENCY },
        () => Deno.createHttpClient({ caCerts: [certificate.caPem], http2: false }),
      ),
      url: `https://localhost:${port}${target === "webhook" ? "/mutate-pod" : "/"}`,
      idleRss: rssMiB(server.pid),
    });
  }
  for (const target of targets) {
    // Opens every open-loop client's connection (TLS handshake) before measuring.
    const { clients } = running.get(target)!;
    await loadAtRateOverClients({ ...request(target), clients, rate: 500, durationMs: 300 });
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
      const open: LoadResult[] = [];
      for (const rate of OPEN_RATES) {
        const { clients } = running.get(target)!;
        open.push(
          await loadAtRateOverClients({ ...request(target), clients, rate, durationMs: OPEN_MS }),
        );
      }
      const list = results.get(target) ?? [];
      list.push({
        load,
        cpuPerRequest,
        steady,
        rss: peakRss,
        idleRss: running.get(target)!.idleRss,
        open,
      });
      results.set(target, list);
    }
  }
} finally {
  for (const { server, client, clients } of running.values()) {
    client.close();
    for (const each of clients) each.close();
    await server.stop();
  }
  await volume.remove();
}

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
/** The median over rounds of one open-loop percentile. */
function openLatency(target: Target, rateIndex: number, p: "p50" | "p99"): number {
  return median(
    results.get(target)!.map((measurement) => measurement.open[rateIndex].latencies[p]),
  );
}

/** webhook ÷ target open-loop latency, round by round, and their median. */
function openRatio(target: Target, rateIndex: number, p: "p50" | "p99"): number {
  const webhook = results.get("webhook")!;
  return median(
    results.get(target)!.map((measurement, round) =>
      webhook[round].open[rateIndex].latencies[p] / measurement.open[rateIndex].latencies[p]
    ),
  );
}

printTable(
  `Open loop: ${CONCURRENCY} connections together sending ${
    OPEN_RATES.join(" and ")
  } reviews/s for ${OPEN_MS / 1000} s each; median of ${ROUNDS} rounds; ` +
    "webhook ÷ this = the webhook's latency over this server's at the same load",
  [
    "server",
    ...OPEN_RATES.flatMap((rate) => [
      `p50 ms @${rate}/s`,
      `p99 ms @${rate}/s`,
      `webhook ÷ this p50, p99 @${rate}/s`,
    ]),
    "errors",
  ],
  targets.map((target) => [
    target,
    ...OPEN_RATES.flatMap((_, index) => [
      fixed(openLatency(target, index, "p50")),
      fixed(openLatency(target, index, "p99")),
      target === "webhook"
        ? "1.00, 1.00"
        : `${fixed(openRatio(target, index, "p50"))}, ${fixed(openRatio(target, index, "p99"))}`,
    ]),
    String(
      results.get(target)!.reduce(
        (sum, measurement) => sum + measurement.open.reduce((n, open) => n + open.errors, 0),
        0,
      ),
    ),
  ]),
);

const webhook = typical("webhook");
const ratio = median(ratios("bare Deno.serve"));
const openP99 = OPEN_RATES.map((_, index) => openLatency("webhook", index, "p99"));
console.log(
  `targets: webhook p99 ${
    fixed(webhook.load.latencies.p99)
  } ms at ${CONCURRENCY} concurrent (closed loop, saturated), ${
    fixed(webhook.steady.latencies.p99)
  } ms at ${RATE}/s, ${
    OPEN_RATES.map((rate, index) => `${fixed(openP99[index])} ms at ${rate}/s`).join(", ")
  } over ${CONCURRENCY} connections (target <= 5 ms: ${
    openP99.every((p99) => p99 <= 5) ? "met" : "NOT met"
  } at these rates); throughput ${fixed(ratio)}x bare Deno.serve`,
);
const overNode = median(ratios("bare node:https"));
console.log(
  `goal: webhook throughput: ${fixed(ratio)}× a bare TLS echo (Deno.serve; ${
    fixed(overNode)
  }× bare node:https) (goal at least 0.8×): ${verdict(ratio, 0.8, "at least")}`,
);
