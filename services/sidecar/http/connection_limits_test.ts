import { assert, assertEquals } from "../../../testing/assert.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import type { ConnectionLimits } from "./connection_limits.ts";
import { startMetadataServer } from "./server.ts";

// Short limits so the tests run quickly; production defaults are 10 s / 30 s / 32 / 256.
const FAST: Partial<ConnectionLimits> = {
  headerTimeoutMs: 300,
  idleTimeoutMs: 600,
  sweepIntervalMs: 100,
};

async function withServer(
  limits: Partial<ConnectionLimits>,
  body: (port: number, logs: Record<string, unknown>[]) => Promise<void>,
): Promise<void> {
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "a",
    IMDS_VM_NAME: "vm",
    IMDS_RATE_LIMIT: "0",
  }));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ component: "test", sink: (line) => logs.push(JSON.parse(line)) });
  const server = startMetadataServer(config, log, {
    hostname: "127.0.0.1",
    port: 0,
    connectionLimits: limits,
  });
  try {
    await body(server.addr.port, logs);
  } finally {
    await server.shutdown();
  }
}

const encoder = new TextEncoder();

/** True when the server closes `conn` within `ms` (reads until EOF or reset). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buffer = new Uint8Array(4096);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  try {
    while ((await conn.read(buffer)) !== null) { /* discard */ }
  } catch { /* reset, or closed by the timer */ }
  clearTimeout(timer);
  if (!timedOut) conn.close();
  return !timedOut;
}

async function request(conn: Deno.Conn, path: string): Promise<string> {
  await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

async function healthy(port: number): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`);
  return response.status === 200 && (await response.text()) === "OK";
}

Deno.test("a connection that never sends a request is closed", async () => {
  await withServer(FAST, async (port, logs) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assert(await closedWithin(conn, 5000), "the silent connection stayed open");
    assert(logs.some((line) => line.msg === "closed slow or excess connections"));
    assert(await healthy(port));
  });
});

Deno.test("a slowloris client (headers never finished) is closed", async () => {
  await withServer(FAST, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode("GET /v1/identity HTTP/1.1\r\nHost: x\r\n"));
    const trickle = setInterval(() => conn.write(encoder.encode("X: y\r\n")).catch(() => {}), 50);
    try {
      assert(await closedWithin(conn, 5000), "the slowloris connection stayed open");
    } finally {
      clearInterval(trickle);
    }
    assert(await healthy(port));
  });
});

Deno.test("idle keep-alive connections are closed; busy ones are kept", async () => {
  await withServer(FAST, async (port) => {
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    const busy = await Deno.connect({ hostname: "127.0.0.1", port });
    assertEquals((await request(idle, "/healthz")).split("\r\n")[0], "HTTP/1.1 200 OK");
    // Keep `busy` working for longer than the idle timeout.
    const started = performance.now();
    while (performance.now() - started < 1500) {
      assertEquals((await request(busy, "/healthz")).split("\r\n")[0], "HTTP/1.1 200 OK");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert(await closedWithin(idle, 5000), "the idle connection stayed open");
    assertEquals((await request(busy, "/v1/meta-data")).split("\r\n")[0], "HTTP/1.1 200 OK");
    busy.close();
  });
});

Deno.test("connections beyond the per-client cap are closed, newest first", async () => {
  await withServer({ sweepIntervalMs: 100, maxPerClient: 3 }, async (port) => {
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 6; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await new Promise((resolve) => setTimeout(resolve, 150)); // each seen by its own sweep
    }
    const closed = await Promise.all(conns.slice(3).map((conn) => closedWithin(conn, 5000)));
    assertEquals(closed, [true, true, true]);
    for (const conn of conns.slice(0, 3)) {
      assertEquals((await request(conn, "/healthz")).split("\r\n")[0], "HTTP/1.1 200 OK");
      conn.close();
    }
  });
});

Deno.test("connections beyond the total cap are closed, newest first", async () => {
  await withServer({ sweepIntervalMs: 100, maxConnections: 2 }, async (port) => {
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 4; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const closed = await Promise.all(conns.slice(2).map((conn) => closedWithin(conn, 5000)));
    assertEquals(closed, [true, true]);
    for (const conn of conns.slice(0, 2)) {
      assertEquals((await request(conn, "/healthz")).split("\r\n")[0], "HTTP/1.1 200 OK");
      conn.close();
    }
  });
});

Deno.test("without limits in the way, Deno.serve keeps a silent connection open", async () => {
  // The reason connection_limits.ts exists: with a long header timeout nothing closes it.
  await withServer({ headerTimeoutMs: 60_000, sweepIntervalMs: 100 }, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assertEquals(await closedWithin(conn, 1000), false);
  });
});
