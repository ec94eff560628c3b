/**
 * The sidecar's HTTP API against a bare Deno.serve (default flags) returning a
 * response of the same size, in the same run: throughput, latency, memory.
 * The sidecar runs with the runtime flags of the deno.json `sidecar` task.
 */

import {
  fixed,
  loadAtConcurrency,
  loadAtRateRaw,
  type LoadResult,
  median,
  printTable,
  repositoryRoot as root,
  rssMiB,
  sampleRss,
} from "./lib.ts";
import { denoRunTask } from "../testing/deno_tasks.ts";
import { freePort, type ServerProcess, startServer } from "../testing/processes.ts";

const ROUNDS = 2;
const CONCURRENCY = 32;
const LOAD_MS = 6000;
const RATE = 50;
const RATE_MS = 10_000;
const metadataHeaders = { Metadata: "true" };

interface Measurement {
  idleRss: number;
  loadRss: number;
  load: LoadResult;
  rate: LoadResult;
}

async function measure(server: ServerProcess, path: string): Promise<Measurement> {
  const url = `http://127.0.0.1:${server.port}${path}`;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idleRss = rssMiB(server.pid);
  const rate = await loadAtRateRaw({
    hostname: "127.0.0.1",
    port: server.port,
    path,
    headers: metadataHeaders,
    rate: RATE,
    durationMs: RATE_MS,
    warmupMs: 500,
  });
  const sampler = sampleRss(server.pid);
  const load = await loadAtConcurrency({
    url,
    headers: metadataHeaders,
    concurrency: CONCURRENCY,
    durationMs: LOAD_MS,
    warmupMs: 500,
  });
  return { idleRss, loadRss: sampler.stop(), load, rate };
}

async function startSidecar(flags: string[], tokenPath: string): Promise<ServerProcess> {
  const port = freePort();
  return await startServer({
    args: ["run", ...flags, `${root}services/sidecar/main.ts`, "serve"],
    port,
    env: {
      IMDS_LISTEN_ADDR: `127.0.0.1:${port}`,
      IMDS_NAMESPACE: "bench",
      IMDS_VM_NAME: "bench-vm",
      IMDS_POD_NAME: "virt-launcher-bench-vm-abcde",
      IMDS_TOKEN_PATH: tokenPath,
      // The limiter stays on but never triggers: a load test from one address
      // would otherwise be answered with 429s.
      IMDS_RATE_LIMIT: "1000000",
    },
  });
}

async function identitySize(server: ServerProcess): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${server.port}/v1/identity`, {
    headers: metadataHeaders,
  });
  return (await response.arrayBuffer()).byteLength;
}

async function main(): Promise<void> {
  const flags = denoRunTask("sidecar", "services/sidecar/main.ts").flags;
  const tokenDir = await Deno.makeTempDir({ prefix: "imds-bench-" });
  const tokenPath = `${tokenDir}/token`;
  await Deno.writeTextFile(tokenPath, "header.eyJleHAiOjQxMDI0NDQ4MDB9.signature");
  // The baseline runs from a directory without a deno.json: default flags, no project config.
  const bareScript = `${tokenDir}/bare_server.ts`;
  await Deno.copyFile(`${root}bench/bare_server.ts`, bareScript);
  const results: { bare: Measurement[]; sidecar: Measurement[] } = { bare: [], sidecar: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const sidecar = await startSidecar(flags, tokenPath);
      const size = await identitySize(sidecar);
      try {
        results.sidecar.push(await measure(sidecar, "/v1/identity"));
      } finally {
        await sidecar.stop();
      }
      const barePort = freePort();
      const bare = await startServer({
        args: ["run", "--allow-net", bareScript, String(barePort), String(size)],
        port: barePort,
      });
      try {
        if (await identitySize(bare) !== size) throw new Error("baseline body size differs");
        results.bare.push(await measure(bare, "/"));
      } finally {
        await bare.stop();
      }
    }
  } finally {
    await Deno.remove(tokenDir, { recursive: true });
  }

  const pick = (side: Measurement[], get: (m: Measurement) => number) => median(side.map(get));
  const metrics: [string, (m: Measurement) => number, string][] = [
    [`requests/s (${CONCURRENCY} concurrent)`, (m) => m.load.requestsPerSecond, "≥ 2000 req/s"],
    ["p50 latency under load, ms", (m) => m.load.latencies.p50, ""],
    ["p99 latency under load, ms", (m) => m.load.latencies.p99, ""],
    [`p99 latency at ${RATE} req/s, ms`, (m) => m.rate.latencies.p99, "≤ 2 ms"],
    ["RSS idle, MiB", (m) => m.idleRss, ""],
    ["RSS under load (peak), MiB", (m) => m.loadRss, "≤ 0.9× bare"],
  ];
  const rows = metrics.map(([name, get, target]) => {
    const sidecar = pick(results.sidecar, get);
    const bare = pick(results.bare, get);
    return [name, fixed(sidecar), fixed(bare), `${fixed(sidecar / bare)}×`, target];
  });
  const errors = [...results.sidecar, ...results.bare]
    .reduce((sum, m) => sum + m.load.errors + m.rate.errors, 0);
  printTable(
    `Sidecar HTTP API vs bare Deno.serve (median of ${ROUNDS} rounds; sidecar flags: ${
      flags.join(" ")
    }; request errors: ${errors})`,
    ["metric", "sidecar", "bare", "ratio", "target"],
    rows,
  );
}

await main();
