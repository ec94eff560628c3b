import { assertEquals, assertThrows } from "../../testing/assert.ts";
import { type Env, envFrom } from "../shared/settings.ts";
import { DEFAULT_RESOURCES, loadWebhookConfig, type WebhookConfig } from "./config.ts";

const BASE = ["--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"];

function load(args: string[], options: { env?: Env; file?: string } = {}): WebhookConfig {
  const result = loadWebhookConfig({
    args: options.file === undefined ? args : [...args, "--config", "/etc/config.yaml"],
    env: options.env ?? envFrom({}),
    readFile: () => options.file ?? "",
  });
  if (result.help) throw new Error("unexpected --help");
  return result.config;
}

function withFile(file: string): WebhookConfig {
  return load([...BASE, "--sidecar-image", "sidecar:1"], { file });
}

Deno.test("defaults with only the required flags", () => {
  const config = load([...BASE, "--sidecar-image", "sidecar:1"]);
  assertEquals(config, {
    listen: { hostname: "0.0.0.0", port: 8443 },
    tlsCertPath: "/tls/tls.crt",
    tlsKeyPath: "/tls/tls.key",
    sidecar: {
      image: "sidecar:1",
      imagePullPolicy: "IfNotPresent",
      nativeSidecar: true,
      resources: DEFAULT_RESOURCES,
      logLevel: "info",
      allowedAnnotations: [],
      rateLimit: { requestsPerSecond: 10, burst: 20 },
      hopLimit: 1,
      sessionsRequired: false,
      network: {
        bridgeNames: [],
        arpResponder: true,
        bridgeIntercept: true,
        passt: true,
        guestRouteIdleSeconds: 300,
      },
    },
    token: { expirationSeconds: 3600, audiences: [] },
    vendorData: "",
    vmSerialInjection: true,
    maxRequestBytes: 4194304,
  });
});

Deno.test("--flag=value, --flag value and the environment; a flag beats its variable", () => {
  const env = envFrom({
    IMDS_WEBHOOK_LISTEN: "127.0.0.1:9443",
    IMDS_WEBHOOK_TLS_CERT: "/env/tls.crt",
    IMDS_WEBHOOK_TLS_KEY: "/env/tls.key",
    IMDS_WEBHOOK_SIDECAR_IMAGE: "from-env:1",
  });
  const fromEnv = load([], { env });
  assertEquals(fromEnv.listen, { hostname: "127.0.0.1", port: 9443 });
  assertEquals([fromEnv.tlsCertPath, fromEnv.tlsKeyPath], ["/env/tls.crt", "/env/tls.key"]);
  assertEquals(fromEnv.sidecar.image, "from-env:1");
  const overridden = load(["--listen=[::1]:8444", "--sidecar-image", "from-flag:2"], { env });
  assertEquals(overridden.listen, { hostname: "::1", port: 8444 });
  assertEquals(overridden.sidecar.image, "from-flag:2");
});

Deno.test("the config file (YAML or JSON) sets everything; the flag's image wins over the file's", () => {
  const yaml = `
sidecar:
  image: from-file:1
  imagePullPolicy: Always
  nativeSidecar: false
  resources:
    requests: { cpu: 20m, memory: 64Mi }
    limits: { cpu: 1, memory: 256Mi }
  logLevel: debug
  allowedAnnotations: [example.com/owner, "team.example.com/*", "app-*", "example.com/cost-*"]
  rateLimit: { requestsPerSecond: 0.5, burst: 3 }
  hopLimit: 0
  sessionsRequired: true
  network:
    bridgeNames: [k6t-eth0]
    arpResponder: false
    bridgeIntercept: false
    passt: false
    guestRouteIdleSeconds: 2.5
token:
  expirationSeconds: 600
  audiences: [vault, "https://sts.example.com"]
vendorData: |
  #cloud-config
vmSerialInjection: false
maxRequestBytes: 1048576
`;
  const config = load(BASE, { file: yaml });
  assertEquals(config.sidecar, {
    image: "from-file:1",
    imagePullPolicy: "Always",
    nativeSidecar: false,
    resources: {
      requests: { cpu: "20m", memory: "64Mi" },
      limits: { cpu: "1", memory: "256Mi" },
    },
    logLevel: "debug",
    allowedAnnotations: ["example.com/owner", "team.example.com/*", "app-*", "example.com/cost-*"],
    rateLimit: { requestsPerSecond: 0.5, burst: 3 },
    hopLimit: 0,
    sessionsRequired: true,
    network: {
      bridgeNames: ["k6t-eth0"],
      arpResponder: false,
      bridgeIntercept: false,
      passt: false,
      guestRouteIdleSeconds: 2.5,
    },
  });
  assertEquals(config.token, {
    expirationSeconds: 600,
    audiences: ["vault", "https://sts.example.com"],
  });
  assertEquals(config.vendorData, "#cloud-config\n");
  assertEquals(config.vmSerialInjection, false);
  assertEquals(config.maxRequestBytes, 1048576);
  assertEquals(config.configPath, "/etc/config.yaml");
  assertEquals(load([...BASE, "--sidecar-image=flag:9"], { file: yaml }).sidecar.image, "flag:9");
  const json = JSON.stringify({ sidecar: { image: "json:1" }, vmSerialInjection: false });
  assertEquals(load(BASE, { file: json }).vmSerialInjection, false);
  // An empty file means all defaults.
  assertEquals(withFile("").token.expirationSeconds, 3600);
});

Deno.test("bad settings stop start-up with a message naming the setting", () => {
  const cases: [string, RegExp][] = [
    [
      "sidecar: { rateLimit: { burst: 0 } }",
      /^sidecar\.rateLimit\.burst: must be at least 1, got 0$/,
    ],
    [
      "sidecar: { rateLimit: { burst: 2.5 } }",
      /^sidecar\.rateLimit\.burst: expected a whole number/,
    ],
    [
      "sidecar: { rateLimit: { requestsPerSecond: -1 } }",
      /^sidecar\.rateLimit\.requestsPerSecond: must be at least 0/,
    ],
    [
      "sidecar: { rateLimit: { brust: 3 } }",
      /^sidecar\.rateLimit\.brust: unknown setting; known settings here: sidecar\.rateLimit\.requestsPerSecond, sidecar\.rateLimit\.burst$/,
    ],
    ["sidecars: {}", /^sidecars: unknown setting/],
    ["sidecar: { hopLimit: 256 }", /^sidecar\.hopLimit: must be at most 255, got 256$/],
    ["sidecar: { hopLimit: 1.5 }", /^sidecar\.hopLimit: expected a whole number/],
    ['sidecar: { sessionsRequired: "yes" }', /^sidecar\.sessionsRequired: /],
    [
      'sidecar: { allowedAnnotations: ["*"] }',
      /^sidecar\.allowedAnnotations\[0\]: expected an annotation key \(example\.com\/owner\) or a prefix ending in \* \(example\.com\/\*\), got the string "\*"$/,
    ],
    [
      'sidecar: { allowedAnnotations: [example.com/a, "a,b"] }',
      /^sidecar\.allowedAnnotations\[1\]: expected an annotation key/,
    ],
    [
      'sidecar: { allowedAnnotations: ["example.com/*/x", "has space"] }',
      /^sidecar\.allowedAnnotations\[0\]: expected an annotation key/,
    ],
    [
      "sidecar: { allowedAnnotations: example.com/* }",
      /^sidecar\.allowedAnnotations: expected a list/,
    ],
    [
      `sidecar: { allowedAnnotations: [${"a,".repeat(65)}] }`,
      /^sidecar\.allowedAnnotations: at most 64 entries, got 65$/,
    ],
    [
      "sidecar: { imagePullPolicy: Sometimes }",
      /^sidecar\.imagePullPolicy: expected one of Always, IfNotPresent, Never, got "Sometimes"$/,
    ],
    [
      'sidecar: { nativeSidecar: "yes" }',
      /^sidecar\.nativeSidecar: expected true or false, got the string "yes"$/,
    ],
    ["sidecar: { logLevel: loud }", /^sidecar\.logLevel: expected one of debug, info, warn, error/],
    [
      "sidecar: { resources: { requests: { cpu: lots } } }",
      /^sidecar\.resources\.requests\.cpu: expected a quantity/,
    ],
    ["sidecar: { resources: { request: {} } }", /^sidecar\.resources\.request: unknown setting/],
    [
      "sidecar: { network: { bridgeNames: [a-very-long-bridge-name] } }",
      /^sidecar\.network\.bridgeNames\[0\]: expected an interface name/,
    ],
    [
      "sidecar: { network: { bridgeNames: k6t-eth0 } }",
      /^sidecar\.network\.bridgeNames: expected a list/,
    ],
    [
      "sidecar: { network: { guestRouteIdleSeconds: 0 } }",
      /^sidecar\.network\.guestRouteIdleSeconds: must be at least 1, got 0$/,
    ],
    [
      "sidecar: { network: { guestRouteIdleSeconds: 86401 } }",
      /^sidecar\.network\.guestRouteIdleSeconds: must be at most 86400, got 86401$/,
    ],
    [
      "token: { expirationSeconds: 60 }",
      /^token\.expirationSeconds: must be at least 600, got 60$/,
    ],
    [
      'token: { expirationSeconds: "3600" }',
      /^token\.expirationSeconds: expected a number, got the string "3600"$/,
    ],
    ["token: { audiences: [vault, vault] }", /^token\.audiences\[1\]: "vault" is listed twice$/],
    ['token: { audiences: ["has space"] }', /^token\.audiences\[0\]: expected 1-1024 characters/],
    ["vendorData: [1]", /^vendorData: expected a string, got a list$/],
    ["maxRequestBytes: 10", /^maxRequestBytes: must be at least 1024, got 10$/],
    ["- just\n- a list", /^\(config file\): expected a mapping, got a list$/],
    ["sidecar: [", /^--config: \/etc\/config\.yaml is not valid YAML or JSON/],
    ["a: 1\na: 2", /^--config: \/etc\/config\.yaml is not valid YAML or JSON/],
  ];
  for (const [file, pattern] of cases) assertThrows(() => withFile(file), pattern);
});

Deno.test("bad or missing flags name the flag", () => {
  assertThrows(
    () => load(["--listen", "nowhere", ...BASE, "--sidecar-image", "s"]),
    /^--listen: expected HOST:PORT/,
  );
  assertThrows(
    () => load([...BASE, "--sidecar-image", "s", "--port", "1"]),
    /^--port: unknown flag; known flags: --listen/,
  );
  assertThrows(() => load([...BASE, "--sidecar-image"]), /^--sidecar-image: needs a value$/);
  assertThrows(
    () => load([...BASE, "--sidecar-image="]),
    /^--sidecar-image: needs a non-empty value$/,
  );
  assertThrows(() => load([...BASE, "stray"]), /^stray: unexpected argument/);
  assertThrows(() => load(BASE), /^--sidecar-image: is required/);
  assertThrows(() => load(["--tls-key", "k", "--sidecar-image", "s"]), /^--tls-cert: is required/);
  assertThrows(() => load(["--tls-cert", "c", "--sidecar-image", "s"]), /^--tls-key: is required/);
  assertThrows(
    () =>
      loadWebhookConfig({
        args: [...BASE, "--sidecar-image", "s", "--config", "/missing.yaml"],
        env: envFrom({}),
        readFile: () => {
          throw new Deno.errors.NotFound("No such file or directory");
        },
      }),
    /^--config: cannot read \/missing\.yaml: No such file or directory$/,
  );
  assertEquals(loadWebhookConfig({ args: ["--help"], env: envFrom({}) }), { help: true });
});

Deno.test("--memory-limit takes bytes (as a resourceFieldRef gives them) or a quantity", () => {
  const base = [...BASE, "--sidecar-image", "sidecar:1"];
  assertEquals(load([...base, "--memory-limit", "201326592"]).memoryLimitBytes, 201326592);
  assertEquals(load([...base, "--memory-limit=192Mi"]).memoryLimitBytes, 201326592);
  const env = envFrom({ IMDS_WEBHOOK_MEMORY_LIMIT: "1G" });
  assertEquals(load(base, { env }).memoryLimitBytes, 1e9);
  assertThrows(
    () => load([...base, "--memory-limit", "lots"]),
    /^--memory-limit: expected bytes or a quantity such as 192Mi, got "lots"$/,
  );
});
