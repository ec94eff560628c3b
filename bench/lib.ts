/**
 * Benchmark building blocks: percentiles, a child process's resident memory,
 * HTTP load at a fixed concurrency or a fixed rate, and starting/stopping a
 * server process and waiting for its port. Benchmarks only target 127.0.0.1.
 */

import { stopProcess } from "../testing/processes.ts";

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/** The p-th percentile (0-100) of `values` (milliseconds), nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median of `values`; for an even count, the lower of the two middle values. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function summarize(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (VmRSS). */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

/**
 * CPU time (user + system) a process has used so far, in milliseconds, from
 * /proc/<pid>/stat (clock ticks of 10 ms, the Linux USER_HZ).
 */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Samples a process's RSS every `intervalMs` until stopped; returns the peak. */
export function sampleRss(pid: number, intervalMs = 100): { stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch { /* the process is gone */ }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}

/** The repository's root directory, with a trailing slash. */
export const repositoryRoot: string = new URL("..", import.meta.url).pathname;

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  requestsPerSecond: number;
  latencies: LatencySummary;
}

export interface LoadOptions {
  url: string;
  headers?: HeadersInit;
  /** Request method (default GET) and body, e.g. POST with a JSON document. */
  method?: string;
  body?: BodyInit;
  /** An HTTP client, e.g. one trusting a test CA for HTTPS. */
  client?: Deno.HttpClient;
  durationMs: number;
  /** Optional warm-up before measuring. */
  warmupMs?: number;
}

/** The result of a load run that began at `started` (performance.now()) and ends now. */
function loadResult(latencies: number[], errors: number, started: number): LoadResult {
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    errors,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    latencies: summarize(latencies),
  };
}

async function timedRequest(options: LoadOptions): Promise<number> {
  const { url, headers, method, body, client } = options;
  const started = performance.now();
  const response = await fetch(url, { headers, method, body, client });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`status ${response.status}`);
  return performance.now() - started;
}

/** Keeps `concurrency` requests in flight for `durationMs`. */
export async function loadAtConcurrency(
  options: LoadOptions & { concurrency: number },
): Promise<LoadResult> {
  if (options.warmupMs) {
    await loadAtConcurrency({ ...options, durationMs: options.warmupMs, warmupMs: 0 });
  }
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        latencies.push(await timedRequest(options));
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return loadResult(latencies, errors, started);
}

/**
 * A minimal HTTP/1.1 keep-alive client over raw TCP: far less client-side work
 * than fetch, so latencies at a low fixed rate are the server's, not ours.
 */
export interface RawConnection {
  busy: boolean;
  /** Sends a GET and resolves to the status once the whole response is read. */
  get(path: string, headers: Record<string, string>): Promise<number>;
  close(): void;
}

export async function rawConnection(hostname: string, port: number): Promise<RawConnection> {
  const conn = await Deno.connect({ hostname, port });
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(65536);
  let pending = new Uint8Array(0);
  const connection: RawConnection = {
    busy: false,
    async get(path, headers) {
      connection.busy = true;
      try {
        const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
        await conn.write(
          encoder.encode(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n${lines.join("")}\r\n`),
        );
        while (true) {
          const text = decoder.decode(pending);
          const end = text.indexOf("\r\n\r\n");
          if (end >= 0) {
            const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
            const total = end + 4 + length;
            if (pending.length >= total) {
              pending = pending.slice(total);
              return Number(text.slice(9, 12));
            }
          }
          const n = await conn.read(buffer);
          if (n === null) throw new Error("connection closed");
          const joined = new Uint8Array(pending.length + n);
          joined.set(pending);
          joined.set(buffer.subarray(0, n), pending.length);
          pending = joined;
        }
      } finally {
        connection.busy = false;
      }
    },
    close: () => conn.close(),
  };
  return connection;
}

/** Sends `rate` requests per second (with fetch) on a fixed schedule for `durationMs`. */
export async function loadAtRate(options: LoadOptions & { rate: number }): Promise<LoadResult> {
  if (options.warmupMs) {
    await loadAtRate({ ...options, durationMs: options.warmupMs, warmupMs: 0 });
  }
  const latencies: number[] = [];
  let errors = 0;
  const interval = 1000 / options.rate;
  const total = Math.floor(options.durationMs / interval);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + i * interval - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      timedRequest(options).then(
        (ms) => void latencies.push(ms),
        () => void errors++,
      ),
    );
  }
  await Promise.all(pending);
  return loadResult(latencies, errors, started);
}

/**
 * Sends `rate` plain-HTTP GETs per second on a fixed schedule for `durationMs`,
 * over raw keep-alive connections (a new one only when all are busy, so a slow
 * response never delays the next send). Latency runs from the write of the
 * request to the last byte of the response.
 */
export async function loadAtRateRaw(options: {
  hostname: string;
  port: number;
  path: string;
  headers?: Record<string, string>;
  rate: number;
  durationMs: number;
  warmupMs?: number;
}): Promise<LoadResult> {
  if (options.warmupMs) {
    await loadAtRateRaw({ ...options, durationMs: options.warmupMs, warmupMs: 0 });
  }
  const headers = options.headers ?? {};
  const pool: RawConnection[] = [];
  const latencies: number[] = [];
  let errors = 0;
  const interval = 1000 / options.rate;
  const total = Math.floor(options.durationMs / interval);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const scheduled = started + i * interval;
      const wait = scheduled - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      let connection = pool.find((c) => !c.busy);
      if (connection === undefined) {
        connection = await rawConnection(options.hostname, options.port);
        pool.push(connection);
      }
      const sent = performance.now();
      pending.push(
        connection.get(options.path, headers).then(
          (status) => {
            if (status >= 200 && status < 300) latencies.push(performance.now() - sent);
            else errors++;
          },
          () => void errors++,
        ),
      );
    }
    await Promise.all(pending);
  } finally {
    for (const connection of pool) connection.close();
  }
  return loadResult(latencies, errors, started);
}

/**
 * Open-loop load as an API server sends it: `clients.length` clients (one
 * connection each) together send `rate` requests per second on a fixed
 * schedule for `durationMs`, request i at i / rate from client i mod
 * clients.length. Latency runs to the last byte from the send, or from the
 * scheduled time when the client's connection was still busy then (the wait
 * counts; a timer firing late does not).
 */
export async function loadAtRateOverClients(
  options: Omit<LoadOptions, "client"> & { rate: number; clients: readonly Deno.HttpClient[] },
): Promise<LoadResult> {
  if (options.warmupMs) {
    await loadAtRateOverClients({ ...options, durationMs: options.warmupMs, warmupMs: 0 });
  }
  const latencies: number[] = [];
  let errors = 0;
  const { clients } = options;
  const interval = 1000 / options.rate;
  const total = Math.floor(options.durationMs / interval);
  const started = performance.now();
  const sender = async (index: number) => {
    const client = clients[index];
    for (let i = index; i < total; i += clients.length) {
      const scheduled = started + i * interval;
      const wait = scheduled - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const from = wait > 0 ? performance.now() : scheduled;
      try {
        const response = await fetch(options.url, {
          headers: options.headers,
          method: options.method,
          body: options.body,
          client,
        });
        await response.arrayBuffer();
        if (response.ok) latencies.push(performance.now() - from);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(clients.map((_, index) => sender(index)));
  return loadResult(latencies, errors, started);
}

/** Prints rows as an aligned text table. */
export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((cell, i) =>
    Math.max(cell.length, ...rows.map((row) => row[i].length))
  );
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join("  ");
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(line(widths.map((width) => "-".repeat(width))));
  for (const row of rows) console.log(line(row));
}

export const fixed = (value: number, digits = 2): string => value.toFixed(digits);

/**
 * Private (anonymous) memory of a process in MiB, from /proc/<pid>/smaps_rollup:
 * what one more copy of the process adds when its binary's pages are shared.
 */
export function anonymousMiB(pid: number): number {
  const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  const match = /^Anonymous:\s+(\d+)\s+kB/m.exec(rollup);
  if (!match) throw new Error(`no Anonymous line for process ${pid}`);
  return Number(match[1]) / 1024;
}

/**
 * How much a server's resident memory grows, in MiB, while one client opens
 * `count` connections and sends nothing: a server that sheds those beyond its
 * caps stays flat, one that holds them all grows. Measured `settleMs` after the
 * last connect; every connection is closed before returning.
 */
export async function rssGrowthUnderConnectionFlood(options: {
  pid: number;
  hostname: string;
  port: number;
  count: number;
  settleMs?: number;
}): Promise<number> {
  const before = rssMiB(options.pid);
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < options.count; i++) {
      conns.push(await Deno.connect({ hostname: options.hostname, port: options.port }));
    }
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 500));
    return rssMiB(options.pid) - before;
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }
}

/**
 * Keeps `concurrency` raw keep-alive connections (rawConnection) busy for
 * `durationMs`: far less client work per request than fetch, so on a small
 * machine the server, not the load generator, is what saturates.
 */
export async function loadAtConcurrencyRaw(options: {
  hostname: string;
  port: number;
  path: string;
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
}): Promise<LoadResult> {
  if (options.warmupMs) {
    await loadAtConcurrencyRaw({ ...options, durationMs: options.warmupMs, warmupMs: 0 });
  }
  const connections = await Promise.all(
    Array.from(
      { length: options.concurrency },
      () => rawConnection(options.hostname, options.port),
    ),
  );
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  try {
    await Promise.all(connections.map(async (connection) => {
      while (performance.now() < deadline) {
        const sent = performance.now();
        try {
          const status = await connection.get(options.path, options.headers ?? {});
          if (status >= 200 && status < 300) latencies.push(performance.now() - sent);
          else errors++;
        } catch {
          errors++;
          return;
        }
      }
    }));
  } finally {
    for (const connection of connections) connection.close();
  }
  return loadResult(latencies, errors, started);
}

/**
 * The server's CPU time (user + system, from /proc) per request, in µs, over
 * exactly `requests` GETs sent on `connections` raw keep-alive connections.
 */
export async function cpuPerRequest(options: {
  pid: number;
  hostname: string;
  port: number;
  path: string;
  headers?: Record<string, string>;
  requests: number;
  connections: number;
}): Promise<number> {
  const pool = await Promise.all(
    Array.from(
      { length: options.connections },
      () => rawConnection(options.hostname, options.port),
    ),
  );
  const each = Math.ceil(options.requests / options.connections);
  const before = cpuMs(options.pid);
  try {
    await Promise.all(pool.map(async (connection) => {
      for (let i = 0; i < each; i++) {
        const status = await connection.get(options.path, options.headers ?? {});
        if (status !== 200) throw new Error(`status ${status}`);
      }
    }));
  } finally {
    for (const connection of pool) connection.close();
  }
  return (cpuMs(options.pid) - before) * 1000 / (each * options.connections);
}

/**
 * Starts a server process and times it from the spawn to its first 200 on
 * `path` (polled every millisecond over fresh connections). Output is discarded.
 */
export async function startTimed(options: {
  command?: string;
  args: string[];
  env?: Record<string, string>;
  port: number;
  path: string;
  timeoutMs?: number;
}): Promise<{ pid: number; coldStartMs: number; stop(): Promise<void> }> {
  const started = performance.now();
  const child = new Deno.Command(options.command ?? Deno.execPath(), {
    args: options.args,
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    await stopProcess(child);
  };
  const deadline = started + (options.timeoutMs ?? 10_000);
  while (true) {
    try {
      const connection = await rawConnection("127.0.0.1", options.port);
      try {
        if (await connection.get(options.path, {}) === 200) {
          return { pid: child.pid, coldStartMs: performance.now() - started, stop };
        }
      } finally {
        connection.close();
      }
    } catch { /* not listening yet */ }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`no 200 on ${options.path} within ${options.timeoutMs ?? 10_000} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** "met" or "NOT met" for a ratio against its bound. */
export function verdict(ratio: number, bound: number, direction: "at most" | "at least"): string {
  const met = direction === "at most" ? ratio <= bound : ratio >= bound;
  return met ? "met" : "NOT met";
}
