// The connection limits depend on the runtime (timers under --single-threaded, descriptor
// limits), so every test here runs the server in its own process with the sidecar's
// production runtime flags.
import { assert, assertEquals, assertMatch } from "../../../testing/assert.ts";
import {
  type LogLine,
  type MetadataServerProcess,
  startMetadataServerProcess,
} from "../../../testing/metadata_server_process.ts";
import {
  connectionCap,
  DEFAULT_CONNECTION_LIMITS,
  RESERVED_DESCRIPTORS,
} from "./connection_limits.ts";

const encoder = new TextEncoder();

/** Short limits for the behaviour that production's would make too slow to test. */
const FAST = { headerTimeoutMs: 600, idleTimeoutMs: 1200, sweepIntervalMs: 100 };

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/**
 * Everything the server sends until it closes the connection, or undefined if it is
 * still open after `ms` (a bound against hanging, not a timing assertion).
 */
async function untilClosed(conn: Deno.Conn, ms = 30_000): Promise<string | undefined> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  try {
    let n;
    while ((n = await conn.read(buffer)) !== null) {
      chunks.push(new TextDecoder().decode(buffer.subarray(0, n)));
    }
  } catch { /* reset, or closed by the timer */ }
  clearTimeout(timer);
  if (!timedOut) {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  return timedOut ? undefined : chunks.join("");
}

async function request(conn: Deno.Conn, path: string): Promise<string> {
  await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0];
}

async function healthy(server: MetadataServerProcess): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${server.port}/healthz`);
  return response.status === 200 && (await response.text()) === "OK";
}

const sweepLine = (line: LogLine) => line.msg === "closed slow or excess connections";

async function withServer(
  options: Parameters<typeof startMetadataServerProcess>[0],
  body: (server: MetadataServerProcess) => Promise<void>,
): Promise<void> {
  const server = await startMetadataServerProcess(options);
  try {
    await body(server);
  } finally {
    const status = await server.stop();
    assertEquals(status.code, 0, "the server exits cleanly on SIGTERM");
  }
}

Deno.test("as shipped, a silent client and a slowloris client are closed at the header timeout", async () => {
  await withServer({ entry: "serve" }, async (server) => {
    const silent = await connect(server.port);
    const slow = await connect(server.port);
    await slow.write(encoder.encode("GET /v1/identity HTTP/1.1\r\nHost: x\r\n"));
    const trickle = setInterval(() => slow.write(encoder.encode("X: y\r\n")).catch(() => {}), 200);
    try {
      const [silentEnd, slowEnd] = await Promise.all([untilClosed(silent), untilClosed(slow)]);
      assertEquals(silentEnd, "", "the silent connection is closed without an answer");
      assertEquals(slowEnd, "", "the slowloris connection is closed without an answer");
    } finally {
      clearInterval(trickle);
    }
    const line = await server.waitForLog(sweepLine);
    assertEquals(line.reasons, { "no request": 2 });
    assertEquals(line.level, "warn");
    assert(await healthy(server));
  });
});

Deno.test("idle keep-alive connections are closed; busy ones are kept", async () => {
  await withServer({ entry: "limits", limits: FAST }, async (server) => {
    const idle = await connect(server.port);
    const busy = await connect(server.port);
    assertEquals(await request(idle, "/healthz"), "HTTP/1.1 200 OK");
    const idleEnd = untilClosed(idle);
    // Keep `busy` working until the idle one is gone.
    let closed: string | undefined | null = null;
    idleEnd.then((end) => closed = end);
    while (closed === null) {
      assertEquals(await request(busy, "/healthz"), "HTTP/1.1 200 OK");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assertEquals(closed, "");
    assertEquals(await request(busy, "/v1/meta-data"), "HTTP/1.1 200 OK");
    busy.close();
    assertEquals((await server.waitForLog(sweepLine)).reasons, { idle: 1 });
  });
});

Deno.test("a client that never reads its responses is closed", async () => {
  await withServer({
    entry: "limits",
    limits: FAST,
    env: { IMDS_USER_DATA: "#cloud-config\n" + "#".repeat(65_536) },
  }, async (server) => {
    const conn = await connect(server.port);
    // Pipelined requests whose answers (64 KiB each) fill both socket buffers.
    const many = encoder.encode("GET /v1/user-data HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000));
    conn.write(many).catch(() => {});
    const line = await server.waitForLog(sweepLine);
    assertEquals(line.reasons, { "response not read": 1 });
    conn.close();
    assert(await healthy(server));
  });
});

Deno.test("as shipped, one client gets 64 connections; the newest beyond are answered 503 and closed", async () => {
  await withServer({ entry: "serve" }, async (server) => {
    const conns: Deno.TcpConn[] = [];
    for (let i = 0; i < 100; i++) conns.push(await connect(server.port));
    const held = conns.slice(0, DEFAULT_CONNECTION_LIMITS.maxPerClient);
    const shed = conns.slice(DEFAULT_CONNECTION_LIMITS.maxPerClient);
    for (const end of await Promise.all(shed.map((conn) => untilClosed(conn)))) {
      assertMatch(end ?? "still open", /^HTTP\/1\.1 503 /);
      assertMatch(end ?? "", /"error":"too_many_connections"/);
    }
    for (const conn of held) {
      assertEquals(await request(conn, "/healthz"), "HTTP/1.1 200 OK");
      conn.close();
    }
    const line = await server.waitForLog(sweepLine);
    assertEquals(line.reasons, { "too many from one client": 36 });
  });
});

Deno.test("connections beyond the total cap are answered 503 and closed", async () => {
  await withServer(
    { entry: "limits", limits: { ...FAST, headerTimeoutMs: 60_000, maxConnections: 3 } },
    async (server) => {
      const conns: Deno.TcpConn[] = [];
      for (let i = 0; i < 5; i++) conns.push(await connect(server.port));
      for (const end of await Promise.all(conns.slice(3).map((conn) => untilClosed(conn)))) {
        assertMatch(end ?? "still open", /^HTTP\/1\.1 503 /);
      }
      for (const conn of conns.slice(0, 3)) {
        assertEquals(await request(conn, "/healthz"), "HTTP/1.1 200 OK");
        conn.close();
      }
    },
  );
});

Deno.test("the total cap stays below the open-file limit", () => {
  assertEquals(connectionCap(256, 1_048_576), 256);
  assertEquals(connectionCap(256, 1024), 256);
  assertEquals(connectionCap(2000, 1024), 1024 - RESERVED_DESCRIPTORS);
  assertEquals(connectionCap(256, 100), 100 - RESERVED_DESCRIPTORS);
  assertEquals(connectionCap(256, 10), 1);
  assertEquals(connectionCap(256, undefined), 256);
});

Deno.test("under a 1024 open-file limit, 1,100 connections leave the server serving", async () => {
  await withServer({
    entry: "limits",
    // Caps above the descriptor limit: the open-file limit has to hold them.
    limits: { headerTimeoutMs: 60_000, maxPerClient: 5000, maxConnections: 5000 },
    openFileLimit: 1024,
  }, async (server) => {
    const lowered = await server.waitForLog((line) =>
      line.msg === "connection cap lowered to fit the open-file limit"
    );
    assertEquals(lowered.maxConnections, 1024 - RESERVED_DESCRIPTORS);
    const conns: Deno.TcpConn[] = [];
    for (let i = 0; i < 1100; i++) conns.push(await connect(server.port));
    const cap = 1024 - RESERVED_DESCRIPTORS;
    const ends = await Promise.all(conns.slice(cap).map((conn) => untilClosed(conn)));
    assert(ends.every((end) => end?.startsWith("HTTP/1.1 503 ")), "the newest are shed with 503");
    assert(server.openFiles() < 1024);
    // Still answering on the connections it holds, and on new ones once those go.
    assertEquals(await request(conns[0], "/healthz"), "HTTP/1.1 200 OK");
    for (const conn of conns.slice(0, cap)) conn.close();
    await server.waitForLog(() => server.openFiles() < 100);
    assert(await healthy(server));
  });
});

Deno.test("when accept fails for want of descriptors, the server waits, logs once and recovers", async () => {
  await withServer({
    entry: "limits",
    limits: { headerTimeoutMs: 60_000, maxPerClient: 5000, maxConnections: 5000 },
  }, async (server) => {
    // Lower the limit under the running server, below what its caps allow.
    const limit = server.openFiles() + 20;
    const prlimit = await new Deno.Command("prlimit", {
      args: [`--pid=${server.pid}`, `--nofile=${limit}:${limit}`],
    }).output();
    assert(prlimit.success, new TextDecoder().decode(prlimit.stderr));
    const conns: Deno.TcpConn[] = [];
    for (let i = 0; i < 40; i++) conns.push(await connect(server.port));
    const exhausted = await server.waitForLog((line) =>
      line.msg === "out of file descriptors: new connections wait until some close"
    );
    assertEquals(exhausted.error, "EMFILE");
    // The connections it holds are still served.
    assertEquals(await request(conns[0], "/healthz"), "HTTP/1.1 200 OK");
    for (const conn of conns.slice(0, 30)) conn.close();
    // The waiting connections are taken in, then new ones.
    assertEquals(await request(conns[39], "/healthz"), "HTTP/1.1 200 OK");
    for (const conn of conns.slice(30)) conn.close();
    assert(await healthy(server));
    const recovered = await server.waitForLog((line) => line.msg === "accepting connections again");
    assertEquals(recovered.error, "EMFILE");
    assertEquals(
      server.logs.filter((line) => line.msg?.startsWith("out of file descriptors")).length,
      1,
      "one log line per episode",
    );
  });
});

Deno.test("5,000 connections from one client: the server keeps only its share of them and keeps answering", async () => {
  await withServer({ entry: "serve" }, async (server) => {
    const { maxPerClient } = DEFAULT_CONNECTION_LIMITS;
    const conns: Deno.TcpConn[] = [];
    for (let i = 0; i < 5000; i++) conns.push(await connect(server.port));
    const ends = await Promise.all(conns.slice(maxPerClient).map((conn) => untilClosed(conn)));
    assert(ends.every((end) => end?.startsWith("HTTP/1.1 503 ")), "the newest are shed with 503");
    // What the server still holds open is the client's share, however many it tried.
    const held = server.connections();
    assert(held <= maxPerClient, `${held} connections held, more than ${maxPerClient}`);
    for (const conn of conns.slice(0, maxPerClient)) conn.close();
    assert(await healthy(server));
  });
});
