import { assertEquals, assertThrows } from "../testing/assert.ts";
import { decodeJwt, serviceAccountClaims, tokenFromBody } from "./jwt.ts";

function b64url(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

const payload = {
  aud: ["https://kubernetes.default.svc.cluster.local"],
  exp: 1900000000,
  sub: "system:serviceaccount:e2e-1:imds-cirros-bridge",
  "kubernetes.io": { namespace: "e2e-1", serviceaccount: { name: "imds-cirros-bridge" } },
  note: "ü?>", // forces '-' / '_' characters and multi-byte UTF-8
};
const token = `${b64url({ alg: "RS256", kid: "k" })}.${b64url(payload)}.c2ln`;

Deno.test("jwt: decodes header and payload of a ServiceAccount token", () => {
  const { header, payload: decoded } = decodeJwt(token);
  assertEquals(header, { alg: "RS256", kid: "k" });
  assertEquals(decoded, payload);
  assertEquals(serviceAccountClaims(decoded), {
    namespace: "e2e-1",
    serviceAccount: "imds-cirros-bridge",
    expiresAt: 1900000000,
    audiences: ["https://kubernetes.default.svc.cluster.local"],
  });
});

Deno.test("jwt: malformed tokens are refused with the reason", () => {
  assertThrows(() => decodeJwt("a.b"), /3 dot-separated parts, this one has 2/);
  assertThrows(() => decodeJwt(`${b64url({})}.${b64url({})}.`), /no signature/);
  assertThrows(() => decodeJwt(`x!.${b64url({})}.s`), /header is not base64url/);
  assertThrows(
    () => decodeJwt(`${b64url({})}.${b64url("text")}.s`),
    /payload is not a JSON object/,
  );
  assertThrows(() => decodeJwt(`${b64url({})}.bm90IGpzb24.s`), /payload is not JSON/);
});

Deno.test("jwt: a token for a user, or without expiry, is not a ServiceAccount token", () => {
  assertThrows(
    () => serviceAccountClaims({ sub: "admin", exp: 1 }),
    /"admin" is not a ServiceAccount/,
  );
  assertThrows(
    () => serviceAccountClaims({ sub: "system:serviceaccount:a:b" }),
    /no numeric exp claim/,
  );
  assertEquals(
    serviceAccountClaims({ sub: "system:serviceaccount:a:b", exp: 5, aud: "x" }).audiences,
    ["x"],
  );
});

Deno.test("jwt: the token answer may be JSON or the bare token", () => {
  assertEquals(tokenFromBody(JSON.stringify({ token, expirationTimestamp: "x" })), token);
  assertEquals(tokenFromBody(`${token}\n`), token);
  assertThrows(() => tokenFromBody('{"error":"nope"}'), /no "token" field/);
  assertThrows(() => tokenFromBody("Bad Request"), /neither JSON nor a JWT/);
});
