/**
 * The sidecar's footprint against its floor, in the same run: every goal as a
 * ratio to a bare Deno.serve run with the sidecar's own V8 flags (deno.json
 * `sidecar` task) serving a body of the same size as /v1/identity, with
 * met / not met. "sidecar" is the artifact the image compiles and the tests
 * run (the bundle of services/sidecar/bundle.ts; `deno compile` itself needs a
 * runtime download this machine cannot make). Also measured: the sidecar run
 * from its TypeScript sources, and, when `go` is on PATH, a minimal Go
 * net/http server as the floor of a compiled language.
 *
 * Per server and round: cold start (spawn → first 200 on /healthz), idle RSS
 * and idle private (anonymous) memory after a second's rest, requests/s and
 * peak RSS with 32 keep-alive connections, and how much RSS grows while one
 * client opens 5,000 connections (the sidecar sheds those beyond its caps).
 * Cold start, server CPU per request (from /proc/PID/stat, over a fixed number
 * of requests) and p99 latency at a steady 50 requests/s are measured apart,
 * the servers taking turns (for CPU and p99 all running at once), and their
 * ratios are the median of same-turn ratios: measurements seconds apart, as
 * this machine's speed drifts by half between minutes, more than the
 * difference being measured. The load generator is a raw HTTP/1.1 client sharing the machine's
 * cores; figures are medians over rounds or turns.
 */

import {
  anonymousMiB,
  cpuPerRequest,
  fixed,
  loadAtConcurrencyRaw,
  loadAtRateRaw,
  median,
  printTable,
  repositoryRoot as root,
  rssGrowthUnderConnectionFlood,
  rssMiB,
  sampleRss,
  startTimed,
  verdict,
} from "./lib.ts";
import { denoRunTask } from "../testing/deno_tasks.ts";
import { sidecarBundle } from "../testing/sidecar_artifact.ts";
import { freePort } from "../testing/processes.ts";

const ROUNDS = 3;
const CONCURRENCY = 32;
const LOAD_MS = 4000;
const RATE = 50;
const RATE_MS = 6000;
const CPU_REQUESTS = 10_000;
const CPU_CONNECTIONS = 8;
/** Turns each server takes in the CPU and latency phase. */
const TURNS = 5;
/** Cold starts of each server, in turns. */
const COLD_TURNS = 9;
/** Connections one client opens at once, far beyond the sidecar's per-client cap. */
const FLOOD_CONNECTIONS = 5000;
const metadataHeaders = { Metadata: "true" };

type Server = "sidecar" | "bare Deno.serve" | "sidecar, unbundled sources" | "Go net/http";

interface Measurement {
  idleRss: number;
  idleAnonymous: number;
  requestsPerSecond: number;
  peakRss: number;
  floodRssGrowth: number;
  errors: number;
}

interface Launch {
  command?: string;
  args: string[];
  env?: Record<string, string>;
  /** The path under load. */
  path: string;
}

async function measure(launch: Launch): Promise<Measurement> {
  const port = freePort();
  const server = await startTimed(startOptions(launch, port));
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = rssMiB(server.pid);
    const idleAnonymous = anonymousMiB(server.pid);
    const target = { hostname: "127.0.0.1", port, path: launch.path, headers: metadataHeaders };
    const sampler = sampleRss(server.pid);
    const load = await loadAtConcurrencyRaw({
      ...target,
      concurrency: CONCURRENCY,
      durationMs: LOAD_MS,
      warmupMs: 300,
    });
    const peakRss = sampler.stop();
    const floodRssGrowth = await rssGrowthUnderConnectionFlood({
      pid: server.pid,
      hostname: "127.0.0.1",
      port,
      count: FLOOD_CONNECTIONS,
    });
    return {
      idleRss,
      idleAnonymous,
      requestsPerSecond: load.requestsPerSecond,
      peakRss,
      floodRssGrowth,
      errors: load.errors,
    };
  } finally {
    await server.stop();
  }
}

/** Per server, one value per turn. */
interface Turns {
  coldStartMs: Map<Server, number[]>;
  cpu: Map<Server, number[]>;
  p99AtRate: Map<Server, number[]>;
  errors: number;
}

/** How to start `launch` on `port`. */
function startOptions(launch: Launch, port: number) {
  return {
    command: launch.command,
    args: launch.args.map((arg) => arg === "PORT" ? String(port) : arg),
    env: launch.env === undefined
      ? undefined
      : { ...launch.env, IMDS_LISTEN_ADDR: `127.0.0.1:${port}` },
    port,
    path: "/healthz",
  };
}

/**
 * Each server's cold start, started and stopped in turns; then its CPU per
 * request and p99 at a steady rate, all started together and measured in
 * turns (the same order in each).
 */
async function measureInTurns(launches: Map<Server, Launch>): Promise<Turns> {
  const coldStartMs = new Map<Server, number[]>();
  for (let turn = 0; turn < COLD_TURNS; turn++) {
    for (const [server, launch] of launches) {
      const started = await startTimed(startOptions(launch, freePort()));
      await started.stop();
      coldStartMs.set(server, [...coldStartMs.get(server) ?? [], started.coldStartMs]);
    }
  }
  const running: {
    server: Server;
    pid: number;
    port: number;
    path: string;
    stop(): Promise<void>;
  }[] = [];
  try {
    for (const [server, launch] of launches) {
      const port = freePort();
      const started = await startTimed(startOptions(launch, port));
      running.push({ server, pid: started.pid, port, path: launch.path, stop: started.stop });
    }
    const turns: Turns = { coldStartMs, cpu: new Map(), p99AtRate: new Map(), errors: 0 };
    for (const { server } of running) {
      turns.cpu.set(server, []);
      turns.p99AtRate.set(server, []);
    }
    for (let turn = 0; turn < TURNS; turn++) {
      for (const { server, pid, port, path } of running) {
        const target = { hostname: "127.0.0.1", port, path, headers: metadataHeaders };
        const rate = await loadAtRateRaw({
          ...target,
          rate: RATE,
          durationMs: RATE_MS,
          warmupMs: 500,
        });
        turns.p99AtRate.get(server)!.push(rate.latencies.p99);
        turns.errors += rate.errors;
        turns.cpu.get(server)!.push(
          await cpuPerRequest({
            ...target,
            pid,
            requests: CPU_REQUESTS,
            connections: CPU_CONNECTIONS,
          }),
        );
      }
    }
    return turns;
  } finally {
    await Promise.all(running.map(({ stop }) => stop()));
  }
}

async function identitySize(launch: Launch): Promise<number> {
  const port = freePort();
  const server = await startTimed({
    args: launch.args.map((arg) => arg === "PORT" ? String(port) : arg),
    env: { ...launch.env, IMDS_LISTEN_ADDR: `127.0.0.1:${port}` },
    port,
    path: "/healthz",
  });
  try {
    const response = await fetch(`http://127.0.0.1:${port}/v1/identity`, {
      headers: metadataHeaders,
    });
    return (await response.arrayBuffer()).byteLength;
  } finally {
    await server.stop();
  }
}

/** Builds bench/go_server.go when `go` is on PATH; undefined otherwise. */
async function buildGoServer(dir: string): Promise<string | undefined> {
  const output = `${dir}/go_server`;
  try {
    const { success, stderr } = await new Deno.Command("go", {
      args: ["build", "-o", output, `${root}bench/go_server.go`],
      env: { GOCACHE: `${dir}/gocache`, GOPATH: `${dir}/gopath`, GOFLAGS: "-mod=mod" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      console.log(`Go baseline left out: go build failed: ${new TextDecoder().decode(stderr)}`);
      return undefined;
    }
    return output;
  } catch {
    console.log("Go baseline left out: go is not on PATH");
    return undefined;
  }
}

async function main(): Promise<void> {
  const flags = denoRunTask("sidecar", "services/sidecar/main.ts").flags;
  const dir = await Deno.makeTempDir({ prefix: "imds-bench-" });
  const tokenPath = `${dir}/token`;
  await Deno.writeTextFile(tokenPath, "header.eyJleHAiOjQxMDI0NDQ4MDB9.signature");
  const sidecarEnv = {
    IMDS_NAMESPACE: "bench",
    IMDS_VM_NAME: "bench-vm",
    IMDS_POD_NAME: "virt-launcher-bench-vm-abcde",
    IMDS_TOKEN_PATH: tokenPath,
    // No limiter: a load test from one address would otherwise be answered with 429s.
    IMDS_RATE_LIMIT: "0",
  };
  const launches = new Map<Server, Launch>();
  launches.set("sidecar", {
    args: ["run", ...flags, await sidecarBundle(), "serve"],
    env: sidecarEnv,
    path: "/v1/identity",
  });
  const size = await identitySize(launches.get("sidecar")!);
  // The baseline gets the sidecar's runtime flags (--no-config included) and nothing else.
  const v8Flags = flags.filter((flag) => flag === "--no-config" || flag.startsWith("--v8-flags"));
  launches.set("bare Deno.serve", {
    args: ["run", ...v8Flags, "--allow-net", `${root}bench/bare_server.ts`, "PORT", String(size)],
    path: "/",
  });
  launches.set("sidecar, unbundled sources", {
    args: ["run", ...flags, `${root}services/sidecar/main.ts`, "serve"],
    env: sidecarEnv,
    path: "/v1/identity",
  });
  const go = await buildGoServer(dir);
  if (go !== undefined) {
    launches.set("Go net/http", { command: go, args: ["PORT", String(size)], path: "/" });
  }

  const results = new Map<Server, Measurement[]>();
  let turns: Turns;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [server, launch] of launches) {
        const list = results.get(server) ?? [];
        list.push(await measure(launch));
        results.set(server, list);
      }
    }
    turns = await measureInTurns(launches);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const servers = [...launches.keys()];
  /** A metric's figure for `server`: the median over rounds (or turns). */
  type Figure = (server: Server) => number;
  const overRounds = (get: (m: Measurement) => number): Figure => (server) =>
    median(results.get(server)!.map(get));
  const overTurns = (values: Map<Server, number[]>): Figure => (server) =>
    median(values.get(server)!);
  /** The median over turns of the sidecar's value ÷ the bare server's in the same turn. */
  const turnRatio = (values: Map<Server, number[]>): number =>
    median(
      values.get("sidecar")!.map((value, turn) => value / values.get("bare Deno.serve")![turn]),
    );
  /** Each metric, its goal as a bound on sidecar ÷ bare (undefined: shown, no goal). */
  const metrics: {
    name: string;
    figure: Figure;
    /** sidecar ÷ bare; by default the ratio of their figures. */
    ratio?: number;
    bound?: number;
    direction: "at most" | "at least";
    digits: number;
  }[] = [
    {
      name: "idle RSS, MiB",
      figure: overRounds((m) => m.idleRss),
      bound: 1.05,
      direction: "at most",
      digits: 1,
    },
    {
      name: `peak RSS, ${CONCURRENCY} connections, MiB`,
      figure: overRounds((m) => m.peakRss),
      bound: 1.05,
      direction: "at most",
      digits: 1,
    },
    {
      name: `RSS growth while one client opens ${FLOOD_CONNECTIONS} connections, MiB`,
      figure: overRounds((m) => m.floodRssGrowth),
      direction: "at most",
      digits: 1,
    },
    {
      name: "idle private (anonymous) memory, MiB",
      figure: overRounds((m) => m.idleAnonymous),
      bound: 1.05,
      direction: "at most",
      digits: 1,
    },
    {
      name: "server CPU per request, µs",
      figure: overTurns(turns.cpu),
      ratio: turnRatio(turns.cpu),
      bound: 1.5,
      direction: "at most",
      digits: 0,
    },
    {
      name: `requests/s, ${CONCURRENCY} connections`,
      figure: overRounds((m) => m.requestsPerSecond),
      direction: "at least",
      digits: 0,
    },
    {
      name: `p99 at a steady ${RATE} requests/s, ms`,
      figure: overTurns(turns.p99AtRate),
      ratio: turnRatio(turns.p99AtRate),
      bound: 1.2,
      direction: "at most",
      digits: 2,
    },
    {
      name: "cold start to first 200 on /healthz, ms",
      figure: overTurns(turns.coldStartMs),
      ratio: turnRatio(turns.coldStartMs),
      bound: 1.1,
      direction: "at most",
      digits: 1,
    },
  ];
  const errors = [...results.values()].flat().reduce((sum, m) => sum + m.errors, turns.errors);
  printTable(
    `Sidecar HTTP API (/v1/identity, ${size} bytes) against its baselines: median of ${ROUNDS} rounds ` +
      `(cold start: of ${COLD_TURNS} turns, CPU and p99: of ${TURNS}, their ratios the median of ` +
      `same-turn ratios); ` +
      `runtime flags of the sidecar and the bare server: ${
        v8Flags.join(" ")
      }; request errors: ${errors}`,
    ["metric", ...servers, "sidecar ÷ bare", "goal", "verdict"],
    metrics.map(({ name, figure, bound, direction, digits, ...given }) => {
      const ratio = given.ratio ?? figure("sidecar") / figure("bare Deno.serve");
      return [
        name,
        ...servers.map((server) => fixed(figure(server), digits)),
        `${fixed(ratio)}×`,
        bound === undefined ? "" : `${direction === "at most" ? "≤" : "≥"} ${bound}×`,
        bound === undefined ? "" : verdict(ratio, bound, direction),
      ];
    }),
  );
  for (const { name, figure, bound, direction, ...given } of metrics) {
    if (bound === undefined) continue;
    const ratio = given.ratio ?? figure("sidecar") / figure("bare Deno.serve");
    console.log(
      `goal: sidecar ${name.replace(/, (MiB|µs|ms)$/, "")}: ${fixed(ratio)}× bare Deno.serve ` +
        `(goal ${direction} ${bound}×): ${verdict(ratio, bound, direction)}`,
    );
  }
}

await main();
