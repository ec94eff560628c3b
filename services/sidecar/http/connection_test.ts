// HTTP/1.1 on the wire, with raw TCP: what a guest can send and what it gets back.
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../../testing/assert.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import { DEFAULT_CONNECTION_LIMITS } from "./connection_limits.ts";
import { serveHttp1 } from "./http1_server.ts";
import { startMetadataServer } from "../api/server.ts";

const encoder = new TextEncoder();
const TOKEN = "header.eyJleHAiOjQxMDI0NDQ4MDB9.signature";

async function withServer(body: (port: number) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "imds-connection-test-" });
  await Deno.writeTextFile(`${dir}/token`, TOKEN);
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "a",
    IMDS_VM_NAME: "vm",
    IMDS_TOKEN_PATH: `${dir}/token`,
    IMDS_RATE_LIMIT: "0",
  }));
  const log = createLogger({ component: "test", sink: () => {} });
  const server = startMetadataServer(config, log, { hostname: "127.0.0.1", port: 0 });
  try {
    await body(server.addr.port);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `request`, then reads until the server closes (or `ms`, a bound against hanging). */
async function exchange(port: number, request: string, ms = 5000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(request));
  return await readUntilClosed(conn, ms);
}

async function readUntilClosed(conn: Deno.Conn, ms: number): Promise<string> {
  const chunks: string[] = [];
  const buffer = new Uint8Array(65_536);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    let n;
    while ((n = await conn.read(buffer)) !== null) {
      chunks.push(new TextDecoder().decode(buffer.subarray(0, n)));
    }
  } catch { /* closed by the timer, or reset */ }
  clearTimeout(timer);
  try {
    conn.close();
  } catch { /* already closed */ }
  return chunks.join("");
}

/** The status lines in what the server sent (the bodies here never contain one). */
const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d+ [^\r]*/g) ?? [];

Deno.test("the request target picks the endpoint; a Host that is not host[:port] is a 400", async () => {
  await withServer(async (port) => {
    const smuggled = await exchange(
      port,
      "GET /healthz HTTP/1.1\r\nHost: x/v1/token?\r\nMetadata: true\r\nConnection: close\r\n\r\n",
    );
    assertMatch(smuggled, /^HTTP\/1\.1 400 /);
    assertStringIncludes(smuggled, '"error":"bad_request"');
    assertStringIncludes(smuggled, "is not a valid host[:port]");
    assert(!smuggled.includes(TOKEN), "the token must not be served");
    // A valid Host names no endpoint either: the path of the request line does.
    const healthz = await exchange(
      port,
      "GET /healthz HTTP/1.1\r\nHost: 169.254.169.254:80\r\nMetadata: true\r\nConnection: close\r\n\r\n",
    );
    assertEquals(statusLines(healthz), ["HTTP/1.1 200 OK"]);
    assert(healthz.endsWith("\r\n\r\nOK"));
    // Absolute-form: the target's own path, whatever the Host header says.
    const absolute = await exchange(
      port,
      "GET http://169.254.169.254/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assertEquals(statusLines(absolute), ["HTTP/1.1 200 OK"]);
    const noHost = await exchange(port, "GET /healthz HTTP/1.1\r\n\r\n");
    assertMatch(noHost, /^HTTP\/1\.1 400 /);
    // HTTP/1.0 needs no Host, and the connection ends after the answer.
    assertEquals(statusLines(await exchange(port, "GET /healthz HTTP/1.0\r\n\r\n")), [
      "HTTP/1.1 200 OK",
    ]);
  });
});

Deno.test("a 413 closes the connection unread, however large the announced body", async () => {
  await withServer(async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n",
    ));
    const answer = readUntilClosed(conn, 30_000);
    // Keep sending until the server has closed: it must not read on.
    let sent = 0;
    const chunk = new Uint8Array(1 << 20);
    try {
      while (sent < 4 << 30) sent += await conn.write(chunk);
    } catch { /* reset: the server closed */ }
    const text = await answer;
    assertMatch(text, /^HTTP\/1\.1 413 /);
    assertStringIncludes(text, '"error":"body_not_allowed"');
    assertStringIncludes(text, "connection: close");
    // What the kernel's socket buffers took, not gigabytes.
    assert(sent < 64 << 20, `the server let ${sent >> 20} MiB in`);
  });
});

Deno.test("nothing pipelined after a refused body is answered", async () => {
  await withServer(async (port) => {
    const text = await exchange(
      port,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
        "GET /v1/meta-data HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assertEquals(statusLines(text), ["HTTP/1.1 413 Content Too Large"]);
    const chunked = await exchange(
      port,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
        "GET /v1/meta-data HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assertEquals(statusLines(chunked), ["HTTP/1.1 413 Content Too Large"]);
  });
});

Deno.test("pipelined requests are answered in order on one connection", async () => {
  await withServer(async (port) => {
    const text = await exchange(
      port,
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
        "\r\n" + // a stray empty line between requests is ignored
        "HEAD /v1/meta-data HTTP/1.1\r\nHost: x\r\n\r\n" +
        "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" +
        "GET /v1/meta-data HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assertEquals(statusLines(text), [
      "HTTP/1.1 200 OK",
      "HTTP/1.1 200 OK",
      "HTTP/1.1 404 Not Found",
      "HTTP/1.1 200 OK",
    ]);
    assert(text.endsWith("local-hostname: vm\n"), "the last answer has its body, HEAD had none");
  });
});

Deno.test("malformed requests get a JSON error and the server keeps serving", async () => {
  await withServer(async (port) => {
    for (
      const [request, status] of [
        ["GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400],
        ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505],
        ["TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501],
        ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400], // a TLS hello
        ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400],
      ] as const
    ) {
      const text = await exchange(port, request);
      assertMatch(text, new RegExp(`^HTTP/1\\.1 ${status} `), JSON.stringify(request));
      const body = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
      assertEquals(typeof body.error, "string");
      assertEquals(typeof body.message, "string");
    }
    assertEquals(
      statusLines(
        await exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      ),
      ["HTTP/1.1 200 OK"],
    );
  });
});

Deno.test("a handler that reads the body gets it, Content-Length or chunked, and the connection stays", async () => {
  const log = createLogger({ component: "test", sink: () => {} });
  const server = serveHttp1(
    {
      hostname: "127.0.0.1",
      port: 0,
      limits: DEFAULT_CONNECTION_LIMITS,
      log,
      onError: () => ({ status: 500, headers: {}, body: "failed" }),
    },
    async (request) => ({
      status: 200,
      headers: {},
      body: `${request.method} ${await new Response(request.body).text()}`,
    }),
  );
  try {
    const text = await exchange(
      server.addr.port,
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
        "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n" +
        "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n" +
        "Connection: close\r\n\r\nxyz",
    );
    assertEquals(
      statusLines(text),
      [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 100 Continue",
        "HTTP/1.1 200 OK",
      ],
    );
    assertStringIncludes(text, "POST hello");
    assertStringIncludes(text, "POST abcde");
    assertStringIncludes(text, "POST xyz");
  } finally {
    await server.shutdown();
  }
});

Deno.test("a malformed chunked body on the password POST is a 400 that closes the connection, and nothing is stored", async () => {
  await withServer(async (port) => {
    const post = "POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n";
    const answers: Record<string, string> = {
      "a chunk size that is not hexadecimal": await exchange(port, post + "zz\r\nab\r\n0\r\n\r\n"),
      "a chunk longer than its size": await exchange(port, post + "3\r\nabcdef\r\n0\r\n\r\n"),
      "a chunk line that never ends": await exchange(port, post + "a".repeat(2000)),
      "a trailer section without end": await exchange(
        port,
        post + "0\r\n" + "X-Trailer: x\r\n".repeat(1000),
      ),
    };
    // A body cut short: the client stops sending but still reads the answer.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(post + "8\r\nabcd"));
    await conn.closeWrite();
    answers["a body cut short"] = await readUntilClosed(conn, 5000);
    for (const [what, text] of Object.entries(answers)) {
      assertEquals(statusLines(text), ["HTTP/1.1 400 Bad Request"], what);
      assertMatch(text, /\r\nconnection: close\r\n/i, what);
      const body = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
      assertEquals(body.error, "bad_request", what);
      assertMatch(body.message, /^the request body is malformed: /, what);
    }
    const stored = await exchange(
      port,
      "GET /openstack/latest/password HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assertEquals(statusLines(stored), ["HTTP/1.1 200 OK"]);
    assertEquals(stored.slice(stored.indexOf("\r\n\r\n") + 4), "");
  });
});
