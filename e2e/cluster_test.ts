/**
 * The cluster calls the suite relies on most, against a local stand-in for
 * the API server: exec over the Kubernetes channel WebSocket protocol (output
 * and exit code), TokenReview, and an API error's status.
 */

import { assertEquals, assertRejects, assertStringIncludes } from "../testing/assert.ts";
import { apiStatus, connect, execIn, reviewToken } from "./cluster.ts";

interface FakeApi {
  url: string;
  execs: string[][];
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One unmasked, final WebSocket frame (server to client). */
function wsFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const header = payload.length < 126
    ? [0x80 | opcode, payload.length]
    : [0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff];
  return new Uint8Array([...header, ...payload]);
}

async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

async function readRequest(conn: Deno.Conn) {
  let data = new Uint8Array(0);
  const buffer = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) return undefined;
    data = new Uint8Array([...data, ...buffer.subarray(0, n)]);
    const text = decoder.decode(data);
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const [requestLine, ...lines] = text.slice(0, end).split("\r\n");
    const headers = new Map(
      lines.map((
        l,
      ) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    const length = Number(headers.get("content-length") ?? 0);
    if (data.length - (end + 4) < length) continue;
    const [method, target] = requestLine.split(" ");
    return { method, url: new URL(target, "http://x"), headers, body: text.slice(end + 4) };
  }
}

/**
 * An API server speaking just enough HTTP/1.1 and WebSocket: exec answers with
 * output on stdout and stderr and the exit code named by the command's last
 * word; TokenReview accepts only "good-token"; anything else is 404.
 */
function fakeApi(): FakeApi {
  const execs: string[][] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = async (conn: Deno.Conn) => {
    try {
      const request = await readRequest(conn);
      if (!request) return;
      const respond = (status: number, body: unknown) =>
        conn.write(encoder.encode(
          `HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\nconnection: close\r\n` +
            `content-length: ${encoder.encode(JSON.stringify(body)).length}\r\n\r\n` +
            JSON.stringify(body),
        ));
      if (request.url.pathname.endsWith("/exec")) {
        const command = request.url.searchParams.getAll("command");
        execs.push(command);
        const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(/,\s*/);
        const protocol = offered.find((p) => p === "v4.channel.k8s.io") ?? offered[0];
        const accept = await acceptKey(request.headers.get("sec-websocket-key")!);
        await conn.write(encoder.encode(
          "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
            `sec-websocket-accept: ${accept}\r\nsec-websocket-protocol: ${protocol}\r\n\r\n`,
        ));
        const channel = (n: number, text: string) =>
          conn.write(wsFrame(2, new Uint8Array([n, ...encoder.encode(text)])));
        const code = Number(command.at(-1));
        await channel(1, `ran ${command.join(" ")}\n`);
        await channel(2, "a warning\n");
        await channel(
          3,
          JSON.stringify(
            code === 0 ? { status: "Success", metadata: {} } : {
              status: "Failure",
              reason: "NonZeroExitCode",
              details: { causes: [{ reason: "ExitCode", message: String(code) }] },
            },
          ),
        );
        await conn.write(wsFrame(8, new Uint8Array([0x03, 0xe8])));
        await new Promise((resolve) => setTimeout(resolve, 50));
        return;
      }
      if (request.url.pathname === "/apis/authentication.k8s.io/v1/tokenreviews") {
        const review = JSON.parse(request.body);
        const good = review.spec.token === "good-token";
        await respond(201, {
          ...review,
          status: good
            ? { authenticated: true, user: { username: "system:serviceaccount:ns:sa" } }
            : { authenticated: false, error: "invalid bearer token" },
        });
        return;
      }
      await respond(404, { kind: "Status", status: "Failure", reason: "NotFound", code: 404 });
    } finally {
      try {
        conn.close();
      } catch {
        // already closed by the client
      }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    execs,
    close: async () => {
      listener.close();
      await accepting;
    },
  };
}

async function withCluster(fn: (api: FakeApi) => Promise<void>): Promise<void> {
  const api = fakeApi();
  const path = await Deno.makeTempFile({ prefix: "imds-e2e-kubeconfig-" });
  const previous = Deno.env.get("KUBECONFIG");
  try {
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: api.url, "insecure-skip-tls-verify": true } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "kind-fake", context: { cluster: "c", user: "u" } }],
        "current-context": "kind-fake",
      }),
    );
    Deno.env.set("KUBECONFIG", path);
    await fn(api);
  } finally {
    if (previous === undefined) Deno.env.delete("KUBECONFIG");
    else Deno.env.set("KUBECONFIG", previous);
    await Deno.remove(path);
    await api.close();
  }
}

const pod = { namespace: "ns", name: "virt-launcher-vm-abcde", container: "compute" };

Deno.test("cluster: exec returns the command's output and exit code", async () => {
  await withCluster(async (api) => {
    const cluster = connect("kind-fake");
    const ok = await execIn(cluster, pod, ["curl", "-s", "0"]);
    assertEquals(ok, { stdout: "ran curl -s 0\n", stderr: "a warning\n", exitCode: 0 });
    const failed = await execIn(cluster, pod, ["curl", "7"]);
    assertEquals(failed.exitCode, 7);
    assertEquals(api.execs, [["curl", "-s", "0"], ["curl", "7"]]);
  });
});

Deno.test("cluster: TokenReview says who a token is, and refuses a bad one", async () => {
  await withCluster(async () => {
    const cluster = connect("kind-fake");
    assertEquals(await reviewToken(cluster, "good-token"), "system:serviceaccount:ns:sa");
    await assertRejects(
      () => reviewToken(cluster, "forged"),
      /TokenReview rejected the token: invalid bearer token/,
    );
  });
});

Deno.test("cluster: API errors carry their HTTP status", async () => {
  await withCluster(async () => {
    const cluster = connect("kind-fake");
    const error = await cluster.core.readNamespace({ name: "gone" }).catch((e) => e);
    assertEquals(apiStatus(error), 404);
    assertEquals(apiStatus(new Error("x")), undefined);
    assertStringIncludes(cluster.server, "http://127.0.0.1:");
  });
});
