import { assertEquals } from "../../../testing/assert.ts";
import { jwtExpiry } from "./token.ts";

const part = (value: unknown) =>
  btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

Deno.test("jwtExpiry reads exp from the payload (base64url, unpadded)", () => {
  const token = `${part({ alg: "RS256" })}.${part({ exp: 1763856000, sub: "?>?>" })}.c2ln`;
  assertEquals(jwtExpiry(token)?.toISOString(), "2025-11-23T00:00:00.000Z");
});

Deno.test("jwtExpiry gives undefined rather than inventing an expiry", () => {
  const cases = [
    "opaque",
    "a.b",
    `x.${part({ sub: "no exp" })}.y`,
    `x.${part({ exp: "1763856000" })}.y`,
    `x.${part({ exp: -5 })}.y`,
    `x.${part({ exp: 1e300 })}.y`,
    `x.${part([1, 2])}.y`,
    "x.%%%.y",
    `x.${btoa("not json")}.y`,
    `x.${part({ exp: 1 })}.y.z`,
  ];
  for (const token of cases) assertEquals(jwtExpiry(token), undefined, token);
});
