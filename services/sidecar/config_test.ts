import { assertEquals, assertThrows } from "../../testing/assert.ts";
import { envFrom, isConfigError } from "../shared/settings.ts";
import { loadSidecarConfig } from "./config.ts";

const minimal = { IMDS_NAMESPACE: "team-a", IMDS_VM_NAME: "web-1" };
const load = (vars: Record<string, string>) => loadSidecarConfig(envFrom({ ...minimal, ...vars }));

function assertConfigError(vars: Record<string, string>, setting: string, pattern: RegExp): void {
  const error = assertThrows(() => loadSidecarConfig(envFrom(vars)), pattern);
  assertEquals(isConfigError(error), true);
  assertEquals((error as Error & { setting: string }).setting, setting);
}

Deno.test("defaults: listen address, token path, rate limit, log level, networking", () => {
  const config = load({});
  assertEquals(config.listen, { hostname: "169.254.169.254", port: 80 });
  assertEquals(config.tokenPath, "/var/run/secrets/tokens/token");
  assertEquals(config.audienceTokens, {});
  assertEquals(config.identity, {
    namespace: "team-a",
    vmName: "web-1",
    serviceAccountName: "default",
  });
  assertEquals(config.cloudInit.userData, { kind: "none" });
  assertEquals(config.cloudInit.vendorData, { kind: "none" });
  assertEquals(config.cloudInit.networkConfig, { kind: "none" });
  assertEquals(config.rateLimit, { requestsPerSecond: 10, burst: 20 });
  assertEquals(config.logLevel, "info");
  assertEquals(config.network, {
    bridgeNames: [],
    arpResponder: true,
    bridgeIntercept: true,
    passt: true,
    guestRouteIdleMs: 300_000,
    hopLimit: 1,
  });
  assertEquals(config.sessionsRequired, false);
});

Deno.test("every variable is read", () => {
  const config = load({
    IMDS_LISTEN_ADDR: "127.0.0.1:8080",
    IMDS_TOKEN_PATH: "/run/token",
    IMDS_AUDIENCE_TOKENS: '{"vault": "/run/vault-token", "https://sts.example.com": "/run/sts"}',
    IMDS_SA_NAME: "builder",
    IMDS_POD_NAME: "virt-launcher-web-1-x7k2p",
    IMDS_VMI_UID: "6f1c2f0e-3b1d-4f0a-9a59-2f8f1c3d4e5f",
    IMDS_NODE_NAME: "node-3.example.com",
    IMDS_USER_DATA: "#cloud-config\nusers: []\n",
    IMDS_VENDOR_DATA_FILE: "/var/run/imds/vendor-data",
    IMDS_NETWORK_CONFIG: "version: 2\n",
    IMDS_RATE_LIMIT: "2.5",
    IMDS_RATE_LIMIT_BURST: "5",
    IMDS_LOG_LEVEL: "debug",
    IMDS_BRIDGE_NAME: "k6t-eth0, k6t-1a2b3c4d5e6",
    IMDS_ARP_RESPONDER: "false",
    IMDS_BRIDGE_INTERCEPT: "off",
    IMDS_PASST: "no",
    IMDS_GUEST_ROUTE_IDLE_SECONDS: "2.5",
    IMDS_HOP_LIMIT: "0",
    IMDS_SESSIONS_REQUIRED: "true",
  });
  assertEquals(config.listen, { hostname: "127.0.0.1", port: 8080 });
  assertEquals(config.tokenPath, "/run/token");
  assertEquals(config.audienceTokens, {
    vault: "/run/vault-token",
    "https://sts.example.com": "/run/sts",
  });
  assertEquals(config.identity, {
    namespace: "team-a",
    vmName: "web-1",
    serviceAccountName: "builder",
    podName: "virt-launcher-web-1-x7k2p",
    vmiUid: "6f1c2f0e-3b1d-4f0a-9a59-2f8f1c3d4e5f",
    nodeName: "node-3.example.com",
  });
  assertEquals(
    new TextDecoder().decode(
      (config.cloudInit.userData as { bytes: Uint8Array<ArrayBuffer> }).bytes,
    ),
    "#cloud-config\nusers: []\n",
  );
  assertEquals(config.cloudInit.vendorData, { kind: "file", path: "/var/run/imds/vendor-data" });
  assertEquals(config.cloudInit.networkConfig.kind, "inline");
  assertEquals(config.rateLimit, { requestsPerSecond: 2.5, burst: 5 });
  assertEquals(config.logLevel, "debug");
  assertEquals(config.network, {
    bridgeNames: ["k6t-eth0", "k6t-1a2b3c4d5e6"],
    arpResponder: false,
    bridgeIntercept: false,
    passt: false,
    guestRouteIdleMs: 2500,
    hopLimit: 0,
  });
  assertEquals(config.sessionsRequired, true);
});

Deno.test("the VM name falls back to the pod name; without either it is required", () => {
  const config = loadSidecarConfig(envFrom({ IMDS_NAMESPACE: "a", IMDS_POD_NAME: "pod-1" }));
  assertEquals(config.identity.vmName, "pod-1");
  assertConfigError({ IMDS_NAMESPACE: "a" }, "IMDS_VM_NAME", /^IMDS_VM_NAME: is required/);
});

Deno.test("a missing namespace names IMDS_NAMESPACE", () => {
  assertConfigError({ IMDS_VM_NAME: "vm" }, "IMDS_NAMESPACE", /IMDS_NAMESPACE: is required/);
});

Deno.test("names must be Kubernetes names (they end up in YAML and JSON)", () => {
  const cases: [string, string][] = [
    ["IMDS_NAMESPACE", "Team_A"],
    ["IMDS_VM_NAME", "web\ninstance-id: other"],
    ["IMDS_SA_NAME", "-builder"],
    ["IMDS_POD_NAME", "pod name"],
    ["IMDS_NODE_NAME", "node:1"],
    ["IMDS_VMI_UID", "not a uid"],
  ];
  for (const [variable, value] of cases) {
    assertConfigError(
      { ...minimal, [variable]: value },
      variable,
      new RegExp(`^${variable}: expected`),
    );
  }
});

Deno.test("malformed values name their variable", () => {
  const cases: [string, string, RegExp][] = [
    ["IMDS_LISTEN_ADDR", "169.254.169.254", /expected HOST:PORT/],
    ["IMDS_TOKEN_PATH", "relative/token", /expected an absolute file path/],
    ["IMDS_RATE_LIMIT", "fast", /expected a number/],
    ["IMDS_RATE_LIMIT", "-1", /must be at least 0/],
    ["IMDS_RATE_LIMIT_BURST", "0", /must be at least 1/],
    ["IMDS_RATE_LIMIT_BURST", "2.5", /whole number/],
    ["IMDS_LOG_LEVEL", "verbose", /expected one of debug, info, warn, error/],
    ["IMDS_ARP_RESPONDER", "maybe", /expected true or false/],
    ["IMDS_HOP_LIMIT", "256", /must be at most 255/],
    ["IMDS_HOP_LIMIT", "1.5", /whole number/],
    ["IMDS_SESSIONS_REQUIRED", "sometimes", /expected true or false/],
    ["IMDS_BRIDGE_INTERCEPT", "2", /expected true or false/],
    ["IMDS_PASST", "y", /expected true or false/],
    ["IMDS_GUEST_ROUTE_IDLE_SECONDS", "0", /must be at least 1/],
    ["IMDS_GUEST_ROUTE_IDLE_SECONDS", "90000", /must be at most 86400/],
    ["IMDS_GUEST_ROUTE_IDLE_SECONDS", "5m", /expected a number/],
    ["IMDS_BRIDGE_NAME", "k6t-this-name-is-too-long", /not a valid interface name/],
    ["IMDS_USER_DATA_FILE", "user-data", /expected an absolute file path/],
  ];
  for (const [variable, value, pattern] of cases) {
    assertConfigError({ ...minimal, [variable]: value }, variable, pattern);
  }
});

Deno.test("inline and file sources of one document are exclusive", () => {
  for (const name of ["USER_DATA", "VENDOR_DATA", "NETWORK_CONFIG"]) {
    assertConfigError(
      { ...minimal, [`IMDS_${name}`]: "x", [`IMDS_${name}_FILE`]: "/f" },
      `IMDS_${name}_FILE`,
      new RegExp(`set either IMDS_${name} or IMDS_${name}_FILE, not both`),
    );
  }
  // An empty inline value counts as unset.
  assertEquals(load({ IMDS_USER_DATA: "", IMDS_USER_DATA_FILE: "/f" }).cloudInit.userData, {
    kind: "file",
    path: "/f",
  });
});

Deno.test("IMDS_AUDIENCE_TOKENS must be a JSON object of audience to absolute path", () => {
  const variable = "IMDS_AUDIENCE_TOKENS";
  const cases: [string, RegExp][] = [
    ["{vault: /x}", /invalid JSON/],
    ['["vault"]', /got an array/],
    ["null", /got null/],
    ['"vault"', /got string/],
    ['{"vault": 7}', /token path for audience "vault" must be a string, got 7/],
    ['{"vault": "token"}', /path for audience "vault" must be an absolute file path, got "token"/],
    ['{"": "/t"}', /audience "" must be 1-1024 characters/],
    ['{"a b": "/t"}', /audience "a b" must be/],
  ];
  for (const [value, pattern] of cases) {
    assertConfigError({ ...minimal, [variable]: value }, variable, pattern);
  }
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`a${i}`, `/t/${i}`]));
  assertConfigError(
    { ...minimal, [variable]: JSON.stringify(many) },
    variable,
    /at most 16 audiences, got 17/,
  );
});

Deno.test("a sustained rate above the default burst raises the default burst; 0 turns limiting off", () => {
  assertEquals(load({ IMDS_RATE_LIMIT: "100" }).rateLimit, { requestsPerSecond: 100, burst: 100 });
  assertEquals(load({ IMDS_RATE_LIMIT: "0" }).rateLimit.requestsPerSecond, 0);
});
