import { assert, assertEquals, assertMatch, assertNotEquals } from "../../../testing/assert.ts";
import {
  SESSION_HEADER,
  SESSION_PATH,
  SESSION_TTL_HEADER,
  SESSION_TTL_SECONDS,
} from "../../shared/contract.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import { type MetadataServer, startMetadataServer } from "./server.ts";
import { createSessionStore } from "./sessions.ts";

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

/** The real server on 127.0.0.1 and [::1] (one handler, as on the two metadata addresses). */
async function startServer(sessionsRequired: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "imds-sessions-test-" });
  await Deno.writeTextFile(`${dir}/token`, "header.e30.sig");
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "team-a",
    IMDS_VM_NAME: "web-1",
    IMDS_TOKEN_PATH: `${dir}/token`,
    IMDS_RATE_LIMIT: "0",
    IMDS_SESSIONS_REQUIRED: String(sessionsRequired),
    IMDS_USER_DATA: "#cloud-config\n",
  }));
  const log = createLogger({ component: "test", sink: () => {} });
  const v4: MetadataServer = startMetadataServer(config, log, { hostname: "127.0.0.1", port: 0 });
  await v4.shutdown();
  // The same free port on both addresses.
  const port = v4.addr.port;
  const server = startMetadataServer(config, log, {
    hostname: "127.0.0.1",
    port,
    alsoListen: [{ hostname: "::1", port }],
  });
  const request = async (
    host: string,
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<Reply> => {
    const response = await fetch(`http://${host}:${port}${path}`, { method, headers, body });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  return {
    v4: (method: string, path: string, headers?: Record<string, string>, body?: string) =>
      request("127.0.0.1", method, path, headers, body),
    v6: (method: string, path: string, headers?: Record<string, string>) =>
      request("[::1]", method, path, headers),
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const META = { Metadata: "true" };
const ttl = (seconds: string | number) => ({ [SESSION_TTL_HEADER]: String(seconds) });
const error = (reply: Reply) => JSON.parse(reply.text).error;

Deno.test("sessions required: identity, token and the instance document need a session from PUT", async () => {
  await using server = await startServer(true);
  for (const path of ["/v1/identity", "/v1/token", "/v1/instance"]) {
    const refused = await server.v4("GET", path, META);
    assertEquals([refused.status, error(refused)], [401, "missing_session"], path);
    assertMatch(JSON.parse(refused.text).message, /PUT \/v1\/session/);
  }
  const issued = await server.v4("PUT", SESSION_PATH, ttl(60));
  assertEquals(issued.status, 200);
  assertEquals(issued.headers.get(SESSION_TTL_HEADER), "60");
  assertEquals(issued.headers.get("cache-control"), "no-store");
  assertMatch(issued.text, /^[A-Za-z0-9_-]{43}$/);
  const session = { ...META, [SESSION_HEADER]: issued.text };
  assertEquals((await server.v4("GET", "/v1/identity", session)).status, 200);
  assertEquals((await server.v4("GET", "/v1/token", session)).status, 200);
  // The Metadata header is still required.
  const noMetadata = await server.v4("GET", "/v1/token", { [SESSION_HEADER]: issued.text });
  assertEquals([noMetadata.status, error(noMetadata)], [400, "missing_header"]);
  // cloud-init's documents stay header-free.
  assertEquals((await server.v4("GET", "/v1/user-data")).status, 200);
  assertEquals((await server.v4("GET", "/v1/meta-data")).status, 200);
  // Each PUT gets a token of its own.
  assertNotEquals((await server.v4("PUT", SESSION_PATH, ttl(60))).text, issued.text);
});

Deno.test("a forged session, or one used from another address, is 401", async () => {
  await using server = await startServer(true);
  const forged = await server.v4("GET", "/v1/token", { ...META, [SESSION_HEADER]: "x".repeat(43) });
  assertEquals([forged.status, error(forged)], [401, "invalid_session"]);
  const issued = (await server.v4("PUT", SESSION_PATH, ttl(60))).text;
  const elsewhere = await server.v6("GET", "/v1/token", { ...META, [SESSION_HEADER]: issued });
  assertEquals([elsewhere.status, error(elsewhere)], [401, "invalid_session"]);
  assertMatch(JSON.parse(elsewhere.text).message, /another address/);
  // The IPv6 address serves the same API.
  const own = (await server.v6("PUT", SESSION_PATH, ttl(5))).text;
  assertEquals(
    (await server.v6("GET", "/v1/identity", { ...META, [SESSION_HEADER]: own })).status,
    200,
  );
});

Deno.test("sessions optional: no session is fine, but one that is sent must be valid", async () => {
  await using server = await startServer(false);
  assertEquals((await server.v4("GET", "/v1/token", META)).status, 200);
  const forged = await server.v4("GET", "/v1/token", { ...META, [SESSION_HEADER]: "forged" });
  assertEquals([forged.status, error(forged)], [401, "invalid_session"]);
  const issued = (await server.v4("PUT", SESSION_PATH, ttl(1))).text;
  assertEquals(
    (await server.v4("GET", "/v1/token", { ...META, [SESSION_HEADER]: issued })).status,
    200,
  );
});

Deno.test("bad session requests get precise errors and change nothing", async () => {
  await using server = await startServer(true);
  const { min, max } = SESSION_TTL_SECONDS;
  const missing = await server.v4("PUT", SESSION_PATH);
  assertEquals([missing.status, error(missing)], [400, "missing_session_ttl"]);
  for (const bad of [String(min - 1), String(max + 1), "abc", "1.5", "-1", "6e1", "99999999999"]) {
    const reply = await server.v4("PUT", SESSION_PATH, ttl(bad));
    assertEquals([reply.status, error(reply)], [400, "invalid_session_ttl"], bad);
  }
  const relayed = await server.v4("PUT", SESSION_PATH, {
    ...ttl(60),
    "X-Forwarded-For": "10.0.0.1",
  });
  assertEquals([relayed.status, error(relayed)], [403, "forwarded_request"]);
  const withBody = await server.v4("PUT", SESSION_PATH, ttl(60), "data");
  assertEquals([withBody.status, error(withBody)], [413, "body_not_allowed"]);
  const get = await server.v4("GET", SESSION_PATH, ttl(60));
  assertEquals([get.status, get.headers.get("allow")], [405, "PUT"]);
  const elsewhere = await server.v4("PUT", "/v1/token", { ...META, ...ttl(60) });
  assertEquals(elsewhere.status, 405);
  const issued = (await server.v4("PUT", SESSION_PATH, ttl(60))).text;
  const onFiles = await server.v4("GET", "/v1/meta-data", { [SESSION_HEADER]: issued });
  assertEquals([onFiles.status, error(onFiles)], [400, "session_not_allowed"]);
  // The server keeps serving, and the good session still works.
  assertEquals(
    (await server.v4("GET", "/v1/token", { ...META, [SESSION_HEADER]: issued })).status,
    200,
  );
});

Deno.test("the store: sessions expire, are bound to the client and capped (oldest forgotten)", () => {
  let now = 0;
  const store = createSessionStore({ max: 3, now: () => now });
  const first = store.issue("10.0.2.2", 10);
  assertEquals(store.check(first, "10.0.2.2"), { valid: true });
  assertEquals(store.check(first, "10.0.2.3"), { valid: false, reason: "other_client" });
  now = 9_999;
  assertEquals(store.check(first, "10.0.2.2"), { valid: true });
  now = 10_000;
  assertEquals(store.check(first, "10.0.2.2"), { valid: false, reason: "expired" });
  assertEquals(store.check(first, "10.0.2.2"), { valid: false, reason: "unknown" });
  const tokens = [1, 2, 3, 4].map(() => store.issue("10.0.2.2", 60));
  assertEquals(store.size, 3);
  assertEquals(store.check(tokens[0], "10.0.2.2"), { valid: false, reason: "unknown" });
  assert(tokens.slice(1).every((token) => store.check(token, "10.0.2.2").valid));
});
