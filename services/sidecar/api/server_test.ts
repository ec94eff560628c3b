import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertStringIncludes,
} from "../../../testing/assert.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import { MAX_HEAD_BYTES } from "../http/request_head.ts";
import { type MetadataServer, startMetadataServer } from "./server.ts";

/** A JWT-shaped token whose payload carries `exp` (the signature is not checked by the service). */
function jwt(claims: Record<string, unknown>, signature = "sig"): string {
  const encode = (value: unknown) =>
    btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `${encode({ alg: "RS256", kid: "k" })}.${encode(claims)}.${signature}`;
}

interface Harness {
  server: MetadataServer;
  dir: string;
  logs: Record<string, unknown>[];
  url(path: string): string;
  get(
    path: string,
    headers?: HeadersInit,
  ): Promise<{ status: number; headers: Headers; text: string }>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function startHarness(
  vars: (dir: string) => Record<string, string> = () => ({}),
): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "imds-server-test-" });
  const tokenPath = `${dir}/token`;
  await Deno.writeTextFile(tokenPath, jwt({ exp: 4102444800, sub: "system:serviceaccount:a:b" }));
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "team-a",
    IMDS_VM_NAME: "web-1",
    IMDS_SA_NAME: "builder",
    IMDS_TOKEN_PATH: tokenPath,
    IMDS_RATE_LIMIT: "0",
    ...vars(dir),
  }));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ component: "test", sink: (line) => logs.push(JSON.parse(line)) });
  const server = startMetadataServer(config, log, { hostname: "127.0.0.1", port: 0 });
  const url = (path: string) => `http://127.0.0.1:${server.addr.port}${path}`;
  return {
    server,
    dir,
    logs,
    url,
    async get(path, headers) {
      const response = await fetch(url(path), { headers });
      return { status: response.status, headers: response.headers, text: await response.text() };
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const META = { Metadata: "true" };

/** Sends raw bytes and returns everything the server sends before closing (or 2 s). */
async function rawRequest(port: number, request: string | Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(typeof request === "string" ? new TextEncoder().encode(request) : request);
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    const deadline = setTimeout(() => conn.close(), 2000);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        chunks.push(buffer.slice(0, n));
        const text = new TextDecoder().decode(concat(chunks));
        const head = text.indexOf("\r\n\r\n");
        const length = /content-length: (\d+)/i.exec(text);
        if (head >= 0 && length && text.length >= head + 4 + Number(length[1])) break;
      }
    } catch { /* closed by the deadline or the server */ }
    clearTimeout(deadline);
    return new TextDecoder().decode(concat(chunks));
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

Deno.test("GET /healthz answers OK without the Metadata header", async () => {
  await using h = await startHarness();
  const response = await h.get("/healthz");
  assertEquals([response.status, response.text], [200, "OK"]);
});

Deno.test("GET /v1/identity returns who the VM is, and requires Metadata: true", async () => {
  await using h = await startHarness(() => ({
    IMDS_POD_NAME: "virt-launcher-web-1-x7k2p",
    IMDS_VMI_UID: "6f1c2f0e-3b1d-4f0a-9a59-2f8f1c3d4e5f",
    IMDS_NODE_NAME: "node-3",
  }));
  const ok = await h.get("/v1/identity", META);
  assertEquals(ok.status, 200);
  assertEquals(ok.headers.get("content-type"), "application/json");
  assertEquals(JSON.parse(ok.text), {
    namespace: "team-a",
    serviceAccountName: "builder",
    vmName: "web-1",
    instanceId: "team-a-web-1",
    podName: "virt-launcher-web-1-x7k2p",
    vmiUid: "6f1c2f0e-3b1d-4f0a-9a59-2f8f1c3d4e5f",
    nodeName: "node-3",
  });
  // The header's name is case-insensitive (HTTP), its value is exactly "true".
  assertEquals((await h.get("/v1/identity", { METADATA: "true" })).status, 200);
  for (
    const headers of [
      {},
      { Metadata: "false" },
      { Metadata: "" },
      { Metadata: "TRUE" },
      { Metadata: "True" },
      { Metadata: "1" },
      { "Metadata-Flavor": "Google" },
    ] as Record<string, string>[]
  ) {
    const refused = await h.get("/v1/identity", headers);
    assertEquals(refused.status, 400);
    const body = JSON.parse(refused.text);
    assertEquals(body.error, "missing_header");
    assertStringIncludes(body.message, 'requires the header "Metadata: true"');
  }
});

Deno.test("GET /v1/token returns the token with the expiry from its exp claim", async () => {
  await using h = await startHarness();
  const response = await h.get("/v1/token", META);
  assertEquals(response.status, 200);
  assertEquals(JSON.parse(response.text), {
    token: await Deno.readTextFile(`${h.dir}/token`),
    expirationTimestamp: "2100-01-01T00:00:00.000Z",
  });
  assertEquals(response.headers.get("cache-control"), "no-store");
  const missing = await h.get("/v1/token");
  assertEquals([missing.status, JSON.parse(missing.text).error], [400, "missing_header"]);
});

Deno.test("GET /v1/token re-reads the file, so a rotated token is served at once", async () => {
  await using h = await startHarness();
  const rotated = jwt({ exp: 1893456000 }, "rotated");
  await Deno.writeTextFile(`${h.dir}/token.new`, rotated);
  await Deno.rename(`${h.dir}/token.new`, `${h.dir}/token`);
  const body = JSON.parse((await h.get("/v1/token", META)).text);
  assertEquals(body, { token: rotated, expirationTimestamp: "2030-01-01T00:00:00.000Z" });
});

Deno.test("GET /v1/token omits expirationTimestamp when exp cannot be read", async () => {
  await using h = await startHarness();
  for (const token of ["opaque-token", jwt({ sub: "no-exp" }), "a.!!!notbase64.c"]) {
    await Deno.writeTextFile(`${h.dir}/token`, token);
    assertEquals(JSON.parse((await h.get("/v1/token", META)).text), { token });
  }
});

Deno.test("an unreadable token is a 503 with Retry-After, and the next request recovers", async () => {
  await using h = await startHarness();
  const token = await Deno.readTextFile(`${h.dir}/token`);
  await Deno.remove(`${h.dir}/token`);
  const unavailable = await h.get("/v1/token", META);
  assertEquals(unavailable.status, 503);
  assertEquals(unavailable.headers.get("retry-after"), "1");
  assertEquals(JSON.parse(unavailable.text).error, "token_unavailable");
  await Deno.writeTextFile(`${h.dir}/token`, "");
  assertEquals((await h.get("/v1/token", META)).status, 503, "an empty file is not a token");
  await Deno.writeTextFile(`${h.dir}/token`, token);
  const recovered = await h.get("/v1/token", META);
  assertEquals([recovered.status, JSON.parse(recovered.text).token], [200, token]);
});

Deno.test("?audience= selects a configured audience token; unknown ones list the known", async () => {
  await using h = await startHarness((dir) => ({
    IMDS_AUDIENCE_TOKENS: JSON.stringify({
      vault: `${dir}/vault`,
      "https://sts.example": `${dir}/sts`,
    }),
  }));
  const vaultToken = jwt({ aud: ["vault"], exp: 2000000000 }, "vault");
  await Deno.writeTextFile(`${h.dir}/vault`, vaultToken + "\n");
  const vault = await h.get("/v1/token?audience=vault", META);
  assertEquals(JSON.parse(vault.text), {
    token: vaultToken,
    expirationTimestamp: "2033-05-18T03:33:20.000Z",
  });
  const unknown = await h.get("/v1/token?audience=kafka", META);
  assertEquals(unknown.status, 404);
  const body = JSON.parse(unknown.text);
  assertEquals(body.error, "unknown_audience");
  assertEquals(body.audiences, ["vault", "https://sts.example"]);
  assertStringIncludes(body.message, "known audiences: vault, https://sts.example");
  // Configured but not mounted yet.
  const sts = await h.get(`/v1/token?audience=${encodeURIComponent("https://sts.example")}`, META);
  assertEquals(sts.status, 503);
});

Deno.test("GET /v1/meta-data is NoCloud YAML and needs no header", async () => {
  await using h = await startHarness();
  const response = await h.get("/v1/meta-data");
  assertEquals(response.status, 200);
  assertEquals(response.text, "instance-id: team-a-web-1\nlocal-hostname: web-1\n");
});

Deno.test("inline user-data, vendor-data and network-config are served byte for byte", async () => {
  const userData = "#cloud-config\r\nusers:\n  - name: \u00e9l\u00e8ve  # non-ASCII, CRLF\n";
  const vendorData = "#cloud-config\npackages: [curl]\n";
  const networkConfig = "version: 2\nethernets:\n  eth0: {dhcp4: true}\n";
  await using h = await startHarness(() => ({
    IMDS_USER_DATA: userData,
    IMDS_VENDOR_DATA: vendorData,
    IMDS_NETWORK_CONFIG: networkConfig,
  }));
  for (
    const [path, expected] of [
      ["/v1/user-data", userData],
      ["/v1/vendor-data", vendorData],
      ["/v1/network-config", networkConfig],
    ]
  ) {
    const response = await fetch(h.url(path));
    assertEquals(response.status, 200);
    assertEquals(new Uint8Array(await response.arrayBuffer()), new TextEncoder().encode(expected));
  }
});

Deno.test("with nothing configured, the cloud-init documents are 200 with an empty body", async () => {
  await using h = await startHarness();
  for (const path of ["/v1/user-data", "/v1/vendor-data", "/v1/network-config"]) {
    const response = await h.get(path);
    assertEquals([path, response.status, response.text], [path, 200, ""]);
  }
});

/** Lays out a directory the way the kubelet does for ConfigMap/Secret volumes. */
async function kubeletVolume(dir: string, files: Record<string, Uint8Array>, generation: number) {
  const data = `${dir}/..2026_11_22_00_00_0${generation}`;
  await Deno.mkdir(data);
  for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(`${data}/${name}`, bytes);
  await Deno.symlink(data.slice(dir.length + 1), `${dir}/..data_tmp`);
  await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`); // the atomic swap
  for (const name of Object.keys(files)) {
    try {
      await Deno.symlink(`..data/${name}`, `${dir}/${name}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

Deno.test("file-based documents are re-read after the kubelet's atomic ..data swap", async () => {
  const first = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x0d, 0x0a]); // binary, e.g. gzip
  const second = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0xfe, 0x01, 0x0d, 0x0a]); // same size
  await using h = await startHarness((dir) => ({
    IMDS_USER_DATA_FILE: `${dir}/volume/user-data`,
    IMDS_NETWORK_CONFIG_FILE: `${dir}/volume/network-config`,
  }));
  const volume = `${h.dir}/volume`;
  await Deno.mkdir(volume);
  const networkConfig = new TextEncoder().encode("version: 2\n");
  await kubeletVolume(volume, { "user-data": first, "network-config": networkConfig }, 1);
  const read = async (path: string) =>
    new Uint8Array(await (await fetch(h.url(path))).arrayBuffer());
  assertEquals(await read("/v1/user-data"), first);
  assertEquals(await read("/v1/network-config"), networkConfig);
  await kubeletVolume(volume, { "user-data": second, "network-config": networkConfig }, 2);
  assertEquals(await read("/v1/user-data"), second);
  // Vendor-data is not configured: still an empty 200.
  assertEquals(await read("/v1/vendor-data"), new Uint8Array());
});

Deno.test("a configured document file that is missing is a 503, then served once it appears", async () => {
  await using h = await startHarness((dir) => ({ IMDS_VENDOR_DATA_FILE: `${dir}/vendor-data` }));
  const missing = await h.get("/v1/vendor-data");
  assertEquals(missing.status, 503);
  assertEquals(missing.headers.get("retry-after"), "1");
  assertEquals(JSON.parse(missing.text).error, "data_unavailable");
  await Deno.writeTextFile(`${h.dir}/vendor-data`, "#cloud-config\n");
  assertEquals(await h.get("/v1/vendor-data").then((r) => [r.status, r.text]), [
    200,
    "#cloud-config\n",
  ]);
});

Deno.test("unknown paths are a 404 JSON error with or without the header", async () => {
  await using h = await startHarness();
  for (const headers of [{}, META] as Record<string, string>[]) {
    for (const path of ["/", "/v1", "/v1/secrets", "/latest/meta-data/", "/v1/identity/x"]) {
      const response = await h.get(path, headers);
      assertEquals(response.status, 404, path);
      assertEquals(response.headers.get("content-type"), "application/json");
      assertEquals(JSON.parse(response.text).error, "not_found");
    }
  }
});

Deno.test("other methods are a 405 with Allow; HEAD is answered", async () => {
  await using h = await startHarness();
  for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    for (const path of ["/v1/token", "/v1/user-data", "/healthz"]) {
      const response = await fetch(h.url(path), { method, headers: META });
      assertEquals(response.status, 405, `${method} ${path}`);
      assertEquals(response.headers.get("allow"), "GET, HEAD");
      assertEquals((await response.json()).error, "method_not_allowed");
    }
  }
  const head = await fetch(h.url("/v1/meta-data"), { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(await head.text(), "");
});

Deno.test("requests relayed through a proxy (Forwarded, Via, X-Forwarded-*, X-Real-IP) are refused", async () => {
  await using h = await startHarness();
  for (
    const header of [
      { "X-Forwarded-For": "10.0.0.7" },
      { Forwarded: "for=10.0.0.7" },
      { Via: "1.1 squid" },
      { "X-Real-IP": "10.0.0.7" },
      { "X-Forwarded-Host": "169.254.169.254" },
      { "X_Forwarded_For": "10.0.0.7" },
      { "x_real_ip": "10.0.0.7" },
    ] as Record<string, string>[]
  ) {
    for (const path of ["/v1/token", "/v1/identity", "/v1/user-data", "/healthz"]) {
      const response = await h.get(path, { ...META, ...header });
      assertEquals(response.status, 403);
      assertEquals(JSON.parse(response.text).error, "forwarded_request");
    }
  }
});

Deno.test("requests with a body are refused with 413 JSON; a POST to a read-only path with 405", async () => {
  await using h = await startHarness();
  const post = await fetch(h.url("/v1/token"), { method: "POST", headers: META, body: "x=1" });
  assertEquals(post.status, 405);
  assertEquals((await post.json()).error, "method_not_allowed");
  const port = h.server.addr.port;
  const get = await rawRequest(
    port,
    "GET /v1/user-data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
  );
  assertMatch(get, /^HTTP\/1\.1 413 /);
  assertStringIncludes(get, '"error":"body_not_allowed"');
  const chunked = await rawRequest(
    port,
    "GET /v1/user-data HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
  assertMatch(chunked, /^HTTP\/1\.1 413 /);
  assertEquals((await h.get("/healthz")).status, 200, "still serving");
});

Deno.test("oversized headers are refused; the server keeps serving", async () => {
  await using h = await startHarness();
  const big = await h.get("/v1/identity", { ...META, "X-Padding": "a".repeat(MAX_HEAD_BYTES) });
  assertEquals(big.status, 431);
  assertEquals(JSON.parse(big.text).error, "headers_too_large");
  const longUrl = await h.get(`/v1/token?audience=${"a".repeat(MAX_HEAD_BYTES)}`, META);
  assertEquals(longUrl.status, 431);
  // However the head is made up, past 8 KiB it is a 431 JSON error and the connection is closed.
  const port = h.server.addr.port;
  const huge = await rawRequest(
    port,
    `GET /v1/identity HTTP/1.1\r\nHost: x\r\nX-Padding: ${"a".repeat(200_000)}\r\n\r\n`,
  );
  assertMatch(huge, /^HTTP\/1\.1 431 /);
  assertStringIncludes(huge, '"error":"headers_too_large"');
  assertStringIncludes(huge, "connection: close");
  const many = Array.from({ length: 1000 }, (_, i) => `X-H${i}: v\r\n`).join("");
  assertMatch(
    await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`),
    /^HTTP\/1\.1 431 /,
  );
  assertEquals((await h.get("/v1/identity", META)).status, 200, "still serving");
});

Deno.test("each client address is rate limited with 429 and Retry-After", async () => {
  await using h = await startHarness(() => ({
    IMDS_RATE_LIMIT: "0.5",
    IMDS_RATE_LIMIT_BURST: "3",
  }));
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await h.get("/v1/meta-data")).status);
  assertEquals(statuses, [200, 200, 200]);
  const limited = await h.get("/v1/identity", META);
  assertEquals(limited.status, 429);
  assertEquals(limited.headers.get("retry-after"), "2");
  const body = JSON.parse(limited.text);
  assertEquals(body.error, "rate_limited");
  assertStringIncludes(body.message, "127.0.0.1");
});

Deno.test("one JSON log line per request, never containing the token", async () => {
  await using h = await startHarness();
  const token = await Deno.readTextFile(`${h.dir}/token`);
  await h.get("/v1/token", META);
  await h.get("/v1/token?audience=nope", META);
  await h.get("/nowhere");
  const requests = h.logs.filter((line) => line.msg === "request");
  assertEquals(requests.length, 3);
  assertEquals(
    requests.map(({ method, path, status, client }) => ({ method, path, status, client })),
    [
      { method: "GET", path: "/v1/token", status: 200, client: "127.0.0.1" },
      { method: "GET", path: "/v1/token", status: 404, client: "127.0.0.1" },
      { method: "GET", path: "/nowhere", status: 404, client: "127.0.0.1" },
    ],
  );
  for (const line of requests) assertEquals(typeof line.durationMs, "number");
  const all = JSON.stringify(h.logs);
  assert(!all.includes(token), "the token must never be logged");
  assert(!all.includes(token.split(".")[2]), "nor its signature");
});

Deno.test("shutdown stops the server and frees its port", async () => {
  const h = await startHarness();
  const port = h.server.addr.port;
  assertNotEquals(port, 0);
  await h[Symbol.asyncDispose]();
  await h.server.finished;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});
