import { assertEquals, assertThrows } from "../../testing/assert.ts";
import {
  envFrom,
  isConfigError,
  optional,
  parseBoolean,
  parseHostPort,
  parseLogLevel,
  parseNumber,
  required,
} from "./settings.ts";

Deno.test("parseHostPort accepts IPv4, names and bracketed IPv6", () => {
  assertEquals(parseHostPort("X", "169.254.169.254:80"), { hostname: "169.254.169.254", port: 80 });
  assertEquals(parseHostPort("X", "localhost:8443"), { hostname: "localhost", port: 8443 });
  assertEquals(parseHostPort("X", "[::1]:0"), { hostname: "::1", port: 0 });
});

Deno.test("parseHostPort names the setting when the value is malformed", () => {
  for (const bad of ["169.254.169.254", ":80", "host:port", "host:99999", "::1:80", ""]) {
    const error = assertThrows(() => parseHostPort("IMDS_LISTEN_ADDR", bad), /^IMDS_LISTEN_ADDR: /);
    assertEquals(isConfigError(error), true);
  }
});

Deno.test("parseBoolean takes the usual words and rejects others", () => {
  assertEquals(parseBoolean("B", "true"), true);
  assertEquals(parseBoolean("B", "Off"), false);
  assertEquals(parseBoolean("B", "1"), true);
  assertThrows(() => parseBoolean("B", "maybe"), /B: expected true or false, got "maybe"/);
});

Deno.test("parseNumber enforces bounds and whole numbers", () => {
  assertEquals(parseNumber("N", " 12 ", { min: 1, integer: true }), 12);
  assertThrows(() => parseNumber("N", "", {}), /N: expected a number/);
  assertThrows(() => parseNumber("N", "1.5", { integer: true }), /N: expected a whole number/);
  assertThrows(() => parseNumber("N", "0", { min: 1 }), /N: must be at least 1/);
  assertThrows(() => parseNumber("N", "11", { max: 10 }), /N: must be at most 10/);
});

Deno.test("parseLogLevel lists the accepted levels", () => {
  assertEquals(parseLogLevel("L", "DEBUG"), "debug");
  assertThrows(() => parseLogLevel("L", "loud"), /L: expected one of debug, info, warn, error/);
});

Deno.test("required and optional treat empty as unset", () => {
  const env = envFrom({ A: "x", B: "" });
  assertEquals(optional(env, "A"), "x");
  assertEquals(optional(env, "B"), undefined);
  assertThrows(() => required(env, "B"), /^B: is required but not set$/);
});
