/**
 * The webhook's configuration: flags and environment (listen address, TLS
 * files, sidecar image, config file path) plus the YAML or JSON config file
 * with everything else. Read and validated once at start-up; every error names
 * the setting (`sidecar.rateLimit.burst: must be at least 1, got 0`).
 */

import { parse as parseYaml } from "yaml";
import { DEFAULT_HOP_LIMIT, GUEST_ROUTE_IDLE_SECONDS, WEBHOOK_ENV } from "../shared/contract.ts";
import type { LogLevel } from "../shared/log.ts";
import {
  checkNumber,
  configError,
  type Env,
  type HostPort,
  parseHostPort,
  parseLogLevel,
} from "../shared/settings.ts";
import { type Flags, parseFlags } from "./flags.ts";

export const DEFAULT_WEBHOOK_LISTEN = "0.0.0.0:8443";

export type PullPolicy = "Always" | "IfNotPresent" | "Never";
const PULL_POLICIES: readonly PullPolicy[] = ["Always", "IfNotPresent", "Never"];

/** core/v1 ResourceRequirements (quantities as strings). */
export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface SidecarSettings {
  image: string;
  imagePullPolicy: PullPolicy;
  nativeSidecar: boolean;
  resources: ResourceRequirements;
  logLevel: LogLevel;
  /** Annotation keys, or prefixes ending in `*`, a guest may read in `/v1/instance`. */
  allowedAnnotations: string[];
  rateLimit: { requestsPerSecond: number; burst: number };
  /** IPv4 TTL / IPv6 hop limit of the service's replies (0: the kernel's); VMs may override. */
  hopLimit: number;
  /** Identity, token and instance document need a session token; VMs may override. */
  sessionsRequired: boolean;
  network: {
    bridgeNames: string[];
    arpResponder: boolean;
    bridgeIntercept: boolean;
    passt: boolean;
    /** Seconds before an idle route back to a link-local guest is removed. */
    guestRouteIdleSeconds: number;
  };
}

/** What the mutations need (everything but the server's own settings). */
export interface InjectionSettings {
  sidecar: SidecarSettings;
  token: { expirationSeconds: number; audiences: string[] };
  vendorData: string;
  vmSerialInjection: boolean;
}

export interface WebhookConfig extends InjectionSettings {
  listen: HostPort;
  tlsCertPath: string;
  tlsKeyPath: string;
  /** The config file read, if any. */
  configPath?: string;
  maxRequestBytes: number;
  /** The container's memory limit, when known (--memory-limit). */
  memoryLimitBytes?: number;
}

export const DEFAULT_RESOURCES: ResourceRequirements = {
  requests: { cpu: "10m", memory: "48Mi" },
  limits: { memory: "128Mi" },
};

export const MAX_AUDIENCES = 16;

/**
 * The largest vendor-data, in bytes of UTF-8. It reaches the sidecar as one
 * environment variable, and Linux passes at most 131072 bytes per variable
 * (MAX_ARG_STRLEN, `NAME=value` included); every `$` is written `$$` for the
 * kubelet, so even a value made only of `$` fits twice over with room to spare.
 */
export const MAX_VENDOR_DATA_BYTES = 64_000;

/** Reads a config file's text; tests pass their own. */
export type ReadFile = (path: string) => string;

export interface LoadOptions {
  args: readonly string[];
  env: Env;
  readFile?: ReadFile;
}

export type LoadResult = { help: true } | { help: false; config: WebhookConfig };

/** Flags, environment and config file → one validated config. Throws a ConfigError. */
export function loadWebhookConfig(options: LoadOptions): LoadResult {
  const parsed = parseFlags(options.args, options.env);
  if (parsed.help) return parsed;
  const flags = parsed.flags;
  const file = flags.config === undefined
    ? {}
    : readConfigFile(flags.config, options.readFile ?? Deno.readTextFileSync);
  return { help: false, config: buildConfig(flags, file) };
}

function readConfigFile(path: string, readFile: ReadFile): unknown {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw configError("--config", `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    const first = (error as Error).message.split("\n")[0];
    throw configError("--config", `${path} is not valid YAML or JSON: ${first}`);
  }
}

function buildConfig(flags: Flags, file: unknown): WebhookConfig {
  const root = object("(config file)", file, [
    "sidecar",
    "token",
    "vendorData",
    "vmSerialInjection",
    "maxRequestBytes",
  ]);
  const sidecar = object("sidecar", root.sidecar ?? {}, [
    "image",
    "imagePullPolicy",
    "nativeSidecar",
    "resources",
    "logLevel",
    "allowedAnnotations",
    "rateLimit",
    "hopLimit",
    "sessionsRequired",
    "network",
  ]);
  const rateLimit = object("sidecar.rateLimit", sidecar.rateLimit ?? {}, [
    "requestsPerSecond",
    "burst",
  ]);
  const network = object("sidecar.network", sidecar.network ?? {}, [
    "bridgeNames",
    "arpResponder",
    "bridgeIntercept",
    "passt",
    "guestRouteIdleSeconds",
  ]);
  const token = object("token", root.token ?? {}, ["expirationSeconds", "audiences"]);

  const image = flags.sidecarImage ?? string("sidecar.image", sidecar.image, "");
  if (image.trim() === "") {
    throw configError(
      "--sidecar-image",
      `is required (or sidecar.image in the config file, or ${WEBHOOK_ENV.sidecarImage})`,
    );
  }
  if (/\s/.test(image)) throw configError("--sidecar-image", `contains spaces: "${image}"`);

  const tlsCertPath = flags.tlsCert;
  if (tlsCertPath === undefined) {
    throw configError("--tls-cert", `is required (or ${WEBHOOK_ENV.tlsCert})`);
  }
  const tlsKeyPath = flags.tlsKey;
  if (tlsKeyPath === undefined) {
    throw configError("--tls-key", `is required (or ${WEBHOOK_ENV.tlsKey})`);
  }

  const config: WebhookConfig = {
    listen: parseHostPort("--listen", flags.listen ?? DEFAULT_WEBHOOK_LISTEN),
    tlsCertPath,
    tlsKeyPath,
    sidecar: {
      image,
      imagePullPolicy: pullPolicy(sidecar.imagePullPolicy),
      nativeSidecar: boolean("sidecar.nativeSidecar", sidecar.nativeSidecar, true),
      resources: sidecar.resources === undefined
        ? structuredClone(DEFAULT_RESOURCES)
        : resources("sidecar.resources", sidecar.resources),
      logLevel: parseLogLevel(
        "sidecar.logLevel",
        string("sidecar.logLevel", sidecar.logLevel, "info"),
      ),
      allowedAnnotations: allowedAnnotations(sidecar.allowedAnnotations),
      rateLimit: {
        requestsPerSecond: number(
          "sidecar.rateLimit.requestsPerSecond",
          rateLimit.requestsPerSecond,
          10,
          {
            min: 0,
            max: 1_000_000,
          },
        ),
        burst: number("sidecar.rateLimit.burst", rateLimit.burst, 20, {
          min: 1,
          max: 1_000_000,
          integer: true,
        }),
      },
      hopLimit: number("sidecar.hopLimit", sidecar.hopLimit, DEFAULT_HOP_LIMIT, {
        min: 0,
        max: 255,
        integer: true,
      }),
      sessionsRequired: boolean("sidecar.sessionsRequired", sidecar.sessionsRequired, false),
      network: {
        bridgeNames: bridgeNames(network.bridgeNames),
        arpResponder: boolean("sidecar.network.arpResponder", network.arpResponder, true),
        bridgeIntercept: boolean("sidecar.network.bridgeIntercept", network.bridgeIntercept, true),
        passt: boolean("sidecar.network.passt", network.passt, true),
        guestRouteIdleSeconds: number(
          "sidecar.network.guestRouteIdleSeconds",
          network.guestRouteIdleSeconds,
          GUEST_ROUTE_IDLE_SECONDS.default,
          { min: GUEST_ROUTE_IDLE_SECONDS.min, max: GUEST_ROUTE_IDLE_SECONDS.max },
        ),
      },
    },
    token: {
      expirationSeconds: number("token.expirationSeconds", token.expirationSeconds, 3600, {
        min: 600,
        max: 4_294_967_295,
        integer: true,
      }),
      audiences: audiences(token.audiences),
    },
    vendorData: vendorData(root.vendorData),
    vmSerialInjection: boolean("vmSerialInjection", root.vmSerialInjection, true),
    maxRequestBytes: number("maxRequestBytes", root.maxRequestBytes, 4 * 1024 * 1024, {
      min: 1024,
      max: 256 * 1024 * 1024,
      integer: true,
    }),
  };
  if (flags.config !== undefined) config.configPath = flags.config;
  if (flags.memoryLimit !== undefined) {
    config.memoryLimitBytes = memoryQuantity("--memory-limit", flags.memoryLimit);
  }
  return config;
}

const BINARY_UNITS: Record<string, number> = {
  "": 1,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};
const DECIMAL_UNITS: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** Bytes from `201326592` (what a resourceFieldRef gives) or a quantity such as `192Mi`. */
function memoryQuantity(setting: string, text: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text.trim());
  if (!match) {
    throw configError(setting, `expected bytes or a quantity such as 192Mi, got "${text}"`);
  }
  const unit = match[2] ?? "";
  const bytes = Number(match[1]) * (BINARY_UNITS[unit] ?? DECIMAL_UNITS[unit]);
  return checkNumber(setting, bytes, { min: 1, max: Number.MAX_SAFE_INTEGER });
}

type Fields = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

function object(setting: string, value: unknown, keys: readonly string[]): Fields {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw configError(setting, `expected a mapping, got ${describe(value)}`);
  }
  const prefix = setting === "(config file)" ? "" : `${setting}.`;
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw configError(
        `${prefix}${key}`,
        `unknown setting; known settings here: ${keys.map((known) => prefix + known).join(", ")}`,
      );
    }
  }
  return value as Fields;
}

function string(setting: string, value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string") {
    throw configError(setting, `expected a string, got ${describe(value)}`);
  }
  return value;
}

function boolean(setting: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") {
    throw configError(setting, `expected true or false, got ${describe(value)}`);
  }
  return value;
}

function number(
  setting: string,
  value: unknown,
  fallback: number,
  bounds: { min?: number; max?: number; integer?: boolean },
): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw configError(setting, `expected a number, got ${describe(value)}`);
  }
  return checkNumber(setting, value, bounds);
}

function pullPolicy(value: unknown): PullPolicy {
  const policy = string("sidecar.imagePullPolicy", value, "IfNotPresent");
  if (!(PULL_POLICIES as readonly string[]).includes(policy)) {
    throw configError(
      "sidecar.imagePullPolicy",
      `expected one of ${PULL_POLICIES.join(", ")}, got "${policy}"`,
    );
  }
  return policy as PullPolicy;
}

// A Kubernetes quantity: 10m, 48Mi, 1.5, 2e3, 1G.
const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$/;
// A resource name: cpu, memory, ephemeral-storage, hugepages-2Mi, example.com/foo.
const RESOURCE_NAME =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function resources(setting: string, value: unknown): ResourceRequirements {
  const fields = object(setting, value, ["requests", "limits"]);
  const result: ResourceRequirements = {};
  for (const part of ["requests", "limits"] as const) {
    if (fields[part] === undefined || fields[part] === null) continue;
    const list = object(`${setting}.${part}`, fields[part], Object.keys(fields[part] as Fields));
    const quantities: Record<string, string> = {};
    for (const [name, quantity] of Object.entries(list)) {
      const where = `${setting}.${part}.${name}`;
      if (!RESOURCE_NAME.test(name)) throw configError(where, "is not a valid resource name");
      const text = typeof quantity === "number" ? String(quantity) : quantity;
      if (typeof text !== "string" || !QUANTITY.test(text)) {
        throw configError(
          where,
          `expected a quantity such as 10m, 48Mi or 1, got ${describe(quantity)}`,
        );
      }
      quantities[name] = text;
    }
    result[part] = quantities;
  }
  return result;
}

/**
 * Why `value` cannot be passed to a process as an environment variable, or
 * undefined: a NUL ends a C string, and text that is not valid Unicode has no
 * UTF-8 form to pass.
 */
function envTextProblem(value: string): string | undefined {
  if (value.includes("\0")) {
    return "contains a NUL character, which an environment variable cannot carry";
  }
  if (!value.isWellFormed()) {
    return "is not valid Unicode text (it holds an unpaired surrogate such as \\uD800)";
  }
  return undefined;
}

function vendorData(value: unknown): string {
  const setting = "vendorData";
  const text = string(setting, value, "");
  const problem = envTextProblem(text);
  if (problem !== undefined) throw configError(setting, problem);
  const bytes = new TextEncoder().encode(text).byteLength;
  if (bytes > MAX_VENDOR_DATA_BYTES) {
    throw configError(
      setting,
      `must be at most ${MAX_VENDOR_DATA_BYTES} bytes (UTF-8), got ${bytes}; serve larger ` +
        `documents as user-data from a Secret or ConfigMap`,
    );
  }
  return text;
}

// deno-lint-ignore no-control-regex
const BAD_AUDIENCE_CHARACTER = /[\x00-\x20\x7f]/;
const BRIDGE_NAME = /^[A-Za-z0-9_.:-]{1,15}$/;
/**
 * An annotation key (an optional DNS-subdomain prefix and `/`, then a name of 1-63 characters),
 * or the start of one followed by `*`; never a lone `*`, which would hand a guest every
 * annotation of its pod.
 */
export const ANNOTATION_PATTERN =
  /^(([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?|[A-Za-z0-9][-A-Za-z0-9_.]{0,252}(\/[-A-Za-z0-9_.]{0,62})?\*)$/;
export const MAX_ALLOWED_ANNOTATIONS = 64;

function allowedAnnotations(value: unknown): string[] {
  const setting = "sidecar.allowedAnnotations";
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw configError(setting, `expected a list, got ${describe(value)}`);
  if (value.length > MAX_ALLOWED_ANNOTATIONS) {
    throw configError(setting, `at most ${MAX_ALLOWED_ANNOTATIONS} entries, got ${value.length}`);
  }
  return value.map((pattern, index) => {
    if (typeof pattern !== "string" || !ANNOTATION_PATTERN.test(pattern)) {
      throw configError(
        `${setting}[${index}]`,
        `expected an annotation key (example.com/owner) or a prefix ending in * (example.com/*), got ${
          describe(pattern)
        }`,
      );
    }
    return pattern;
  });
}

function bridgeNames(value: unknown): string[] {
  const setting = "sidecar.network.bridgeNames";
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw configError(setting, `expected a list, got ${describe(value)}`);
  return value.map((name, index) => {
    if (typeof name !== "string" || !BRIDGE_NAME.test(name)) {
      throw configError(
        `${setting}[${index}]`,
        `expected an interface name (1-15 letters, digits, _ . : -), got ${describe(name)}`,
      );
    }
    return name;
  });
}

function audiences(value: unknown): string[] {
  const setting = "token.audiences";
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw configError(setting, `expected a list, got ${describe(value)}`);
  if (value.length > MAX_AUDIENCES) {
    throw configError(setting, `at most ${MAX_AUDIENCES} audiences, got ${value.length}`);
  }
  const seen = new Set<string>();
  return value.map((audience, index) => {
    if (
      typeof audience !== "string" || audience === "" || audience.length > 1024 ||
      BAD_AUDIENCE_CHARACTER.test(audience) || !audience.isWellFormed()
    ) {
      throw configError(
        `${setting}[${index}]`,
        `expected 1-1024 characters with no spaces or control characters, got ${
          describe(audience)
        }`,
      );
    }
    if (seen.has(audience)) {
      throw configError(`${setting}[${index}]`, `"${audience}" is listed twice`);
    }
    seen.add(audience);
    return audience;
  });
}
