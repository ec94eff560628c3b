/**
 * The sidecar's configuration: every IMDS_* environment variable, read once at
 * start-up and validated. A bad value throws a ConfigError naming the variable.
 */

import {
  DEFAULT_HOP_LIMIT,
  DEFAULT_LISTEN_ADDR,
  GUEST_ROUTE_IDLE_SECONDS,
  NETWORK_CONFIG_FROM_POD_NETWORKS,
  POD_INFO_FILES,
  SIDECAR_ENV,
  SIDECAR_PATHS,
} from "../shared/contract.ts";
import type { LogLevel } from "../shared/log.ts";
import {
  configError,
  type Env,
  type HostPort,
  optional,
  parseBoolean,
  parseHostPort,
  parseLogLevel,
  parseNumber,
  required,
} from "../shared/settings.ts";
import { type IpSubnet, parseSubnet } from "./api/ip_address.ts";

/** Where a cloud-init document comes from. */
export type ContentSource =
  | { kind: "none" }
  | { kind: "inline"; bytes: Uint8Array<ArrayBuffer> }
  | { kind: "file"; path: string };

/** Who the VM is; served by /v1/identity and /v1/meta-data. */
export interface Identity {
  namespace: string;
  vmName: string;
  serviceAccountName: string;
  podName?: string;
  vmiUid?: string;
  nodeName?: string;
}

export interface RateLimitConfig {
  /** Sustained requests per second per client address; 0 turns limiting off. */
  requestsPerSecond: number;
  /** Requests a client may make at once before the sustained rate applies. */
  burst: number;
}

export interface NetworkConfig {
  /** Bridges to attach to; empty means every k6t-* bridge. */
  bridgeNames: string[];
  arpResponder: boolean;
  bridgeIntercept: boolean;
  passt: boolean;
  /** Routes back to link-local guest addresses are removed after this long without traffic. */
  guestRouteIdleMs: number;
  /** IPv4 TTL / IPv6 hop limit of every reply from the metadata addresses; 0 leaves the kernel's. */
  hopLimit: number;
}

/** What lets the guest's owner in: SSH keys, the admin account, the posted password. */
export interface GuestAccessConfig {
  /** Directory with one sub-directory per SSH key Secret; undefined when there are none. */
  sshKeysDir?: string;
  /** The admin password (OpenStack `admin_pass`), from the user's Secret. */
  adminPassword: ContentSource;
  /** The admin account name (OpenStack `meta.admin_username`). */
  adminUsername?: string;
  /** Where the password a guest posts is saved; undefined keeps it in memory only. */
  stateDir?: string;
}

/** Where /v1/instance reads the pod's labels and annotations (downward API files). */
export interface InstanceConfig {
  labelsFile?: string;
  annotationsFile?: string;
  /** Annotation keys, or prefixes ending in `*`, guests may read. */
  allowedAnnotations: string[];
}

/** Generating network-config from the pod's Multus network-status. */
export interface PodNetworksConfig {
  statusFile: string;
  subnets: IpSubnet[];
  /** Pod interfaces network-status must list before the document is complete. */
  expectedInterfaces: string[];
}

export interface SidecarConfig {
  listen: HostPort;
  /** The default ServiceAccount token file, re-read on every request. */
  tokenPath: string;
  /** Extra audiences: audience → token file path. */
  audienceTokens: Record<string, string>;
  identity: Identity;
  cloudInit: {
    userData: ContentSource;
    vendorData: ContentSource;
    networkConfig: ContentSource;
  };
  rateLimit: RateLimitConfig;
  logLevel: LogLevel;
  network: NetworkConfig;
  guestAccess: GuestAccessConfig;
  instance: InstanceConfig;
  /** Set when network-config is generated from the pod's networks. */
  podNetworks?: PodNetworksConfig;
  /** Identity, token and the instance document need a session token (`PUT /v1/session`). */
  sessionsRequired: boolean;
}

export const DEFAULT_RATE_LIMIT: RateLimitConfig = { requestsPerSecond: 10, burst: 20 };
export const DEFAULT_SERVICE_ACCOUNT = "default";
const MAX_AUDIENCES = 16;

// Kubernetes object names: DNS-1123 label (namespaces) and subdomain (most others).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const UID = /^[0-9a-fA-F][0-9a-fA-F-]{0,63}$/;
const INTERFACE_NAME = /^[A-Za-z0-9_.:-]{1,15}$/;

export function loadSidecarConfig(env: Env): SidecarConfig {
  const namespace = name(env, SIDECAR_ENV.namespace, DNS_LABEL, "a DNS-1123 label", true)!;
  const podName = name(env, SIDECAR_ENV.podName, DNS_SUBDOMAIN, "a DNS-1123 subdomain");
  const vmName = name(env, SIDECAR_ENV.vmName, DNS_SUBDOMAIN, "a DNS-1123 subdomain") ?? podName;
  if (vmName === undefined) {
    throw configError(
      SIDECAR_ENV.vmName,
      `is required (the VM's name) unless ${SIDECAR_ENV.podName} is set`,
    );
  }
  const identity: Identity = {
    namespace,
    vmName,
    serviceAccountName: name(env, SIDECAR_ENV.saName, DNS_SUBDOMAIN, "a DNS-1123 subdomain") ??
      DEFAULT_SERVICE_ACCOUNT,
  };
  if (podName !== undefined) identity.podName = podName;
  const vmiUid = name(env, SIDECAR_ENV.vmiUid, UID, "a UID such as 6f1c…-…");
  if (vmiUid !== undefined) identity.vmiUid = vmiUid;
  const nodeName = name(env, SIDECAR_ENV.nodeName, DNS_SUBDOMAIN, "a DNS-1123 subdomain");
  if (nodeName !== undefined) identity.nodeName = nodeName;

  return {
    listen: parseHostPort(
      SIDECAR_ENV.listenAddr,
      optional(env, SIDECAR_ENV.listenAddr) ?? DEFAULT_LISTEN_ADDR,
    ),
    tokenPath: absolutePath(
      SIDECAR_ENV.tokenPath,
      optional(env, SIDECAR_ENV.tokenPath) ?? SIDECAR_PATHS.token,
    ),
    audienceTokens: parseAudienceTokens(env),
    identity,
    cloudInit: {
      userData: contentSource(env, SIDECAR_ENV.userData, SIDECAR_ENV.userDataFile),
      vendorData: contentSource(env, SIDECAR_ENV.vendorData, SIDECAR_ENV.vendorDataFile),
      networkConfig: contentSource(env, SIDECAR_ENV.networkConfig, SIDECAR_ENV.networkConfigFile),
    },
    rateLimit: parseRateLimit(env),
    logLevel: parseLogLevel(SIDECAR_ENV.logLevel, optional(env, SIDECAR_ENV.logLevel) ?? "info"),
    network: parseNetwork(env),
    guestAccess: parseGuestAccess(env),
    instance: parseInstance(env),
    sessionsRequired: parseBoolean(
      SIDECAR_ENV.sessionsRequired,
      optional(env, SIDECAR_ENV.sessionsRequired) ?? "false",
    ),
    ...parsePodNetworks(env),
  };
}

function name(
  env: Env,
  variable: string,
  pattern: RegExp,
  what: string,
  isRequired = false,
): string | undefined {
  const value = isRequired ? required(env, variable) : optional(env, variable);
  if (value === undefined) return undefined;
  if (!pattern.test(value)) {
    throw configError(variable, `expected ${what}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function absolutePath(variable: string, value: string): string {
  if (!value.startsWith("/") || value.includes("\0")) {
    throw configError(variable, `expected an absolute file path, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseAudienceTokens(env: Env): Record<string, string> {
  const variable = SIDECAR_ENV.audienceTokens;
  const text = optional(env, variable);
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw configError(
      variable,
      `expected a JSON object {"audience": "/token/path"}, got invalid JSON (${
        (error as Error).message
      })`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw configError(
      variable,
      `expected a JSON object {"audience": "/token/path"}, got ${
        Array.isArray(parsed) ? "an array" : parsed === null ? "null" : typeof parsed
      }`,
    );
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_AUDIENCES) {
    throw configError(variable, `at most ${MAX_AUDIENCES} audiences, got ${entries.length}`);
  }
  const result: Record<string, string> = {};
  for (const [audience, path] of entries) {
    // deno-lint-ignore no-control-regex
    if (audience.trim() === "" || audience.length > 1024 || /[\x00-\x20\x7f]/.test(audience)) {
      throw configError(
        variable,
        `audience ${
          JSON.stringify(audience)
        } must be 1-1024 characters with no spaces or control characters`,
      );
    }
    if (typeof path !== "string") {
      throw configError(
        variable,
        `the token path for audience ${JSON.stringify(audience)} must be a string, got ${
          JSON.stringify(path)
        }`,
      );
    }
    if (!path.startsWith("/") || path.includes("\0")) {
      throw configError(
        variable,
        `the token path for audience ${
          JSON.stringify(audience)
        } must be an absolute file path, got ${JSON.stringify(path)}`,
      );
    }
    result[audience] = path;
  }
  return result;
}

function contentSource(env: Env, inlineVariable: string, fileVariable: string): ContentSource {
  const inline = env(inlineVariable);
  const file = optional(env, fileVariable);
  if (inline !== undefined && inline !== "" && file !== undefined) {
    throw configError(fileVariable, `set either ${inlineVariable} or ${fileVariable}, not both`);
  }
  if (file !== undefined) return { kind: "file", path: absolutePath(fileVariable, file) };
  if (inline !== undefined && inline !== "") {
    return { kind: "inline", bytes: new TextEncoder().encode(inline) };
  }
  return { kind: "none" };
}

function parseRateLimit(env: Env): RateLimitConfig {
  const rate = optional(env, SIDECAR_ENV.rateLimit);
  const burst = optional(env, SIDECAR_ENV.rateLimitBurst);
  const requestsPerSecond = rate === undefined
    ? DEFAULT_RATE_LIMIT.requestsPerSecond
    : parseNumber(SIDECAR_ENV.rateLimit, rate, { min: 0, max: 1_000_000 });
  return {
    requestsPerSecond,
    burst: burst === undefined
      ? Math.max(DEFAULT_RATE_LIMIT.burst, Math.ceil(requestsPerSecond))
      : parseNumber(SIDECAR_ENV.rateLimitBurst, burst, { min: 1, max: 1_000_000, integer: true }),
  };
}

// Windows and Linux account names alike: no spaces, quotes, slashes or shell characters.
const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,19}$/;

function parseGuestAccess(env: Env): GuestAccessConfig {
  const passwordFile = optional(env, SIDECAR_ENV.adminPasswordFile);
  const access: GuestAccessConfig = {
    adminPassword: passwordFile === undefined
      ? { kind: "none" }
      : { kind: "file", path: absolutePath(SIDECAR_ENV.adminPasswordFile, passwordFile) },
  };
  const keys = optional(env, SIDECAR_ENV.sshKeysDir);
  if (keys !== undefined) access.sshKeysDir = absolutePath(SIDECAR_ENV.sshKeysDir, keys);
  const state = optional(env, SIDECAR_ENV.stateDir);
  if (state !== undefined) access.stateDir = absolutePath(SIDECAR_ENV.stateDir, state);
  const user = name(
    env,
    SIDECAR_ENV.adminUsername,
    ACCOUNT_NAME,
    "an account name of 1-20 letters, digits, _ . -",
  );
  if (user !== undefined) access.adminUsername = user;
  return access;
}

function parseNetwork(env: Env): NetworkConfig {
  const bridgeNames = interfaceNames(env, SIDECAR_ENV.bridgeName);
  const flag = (variable: string): boolean => {
    const value = optional(env, variable);
    return value === undefined ? true : parseBoolean(variable, value);
  };
  return {
    bridgeNames,
    arpResponder: flag(SIDECAR_ENV.arpResponder),
    bridgeIntercept: flag(SIDECAR_ENV.bridgeIntercept),
    passt: flag(SIDECAR_ENV.passt),
    guestRouteIdleMs: parseIdleSeconds(env) * 1000,
    hopLimit: parseHopLimit(env),
  };
}

function parseIdleSeconds(env: Env): number {
  const value = optional(env, SIDECAR_ENV.guestRouteIdleSeconds);
  if (value === undefined) return GUEST_ROUTE_IDLE_SECONDS.default;
  const { min, max } = GUEST_ROUTE_IDLE_SECONDS;
  return parseNumber(SIDECAR_ENV.guestRouteIdleSeconds, value, { min, max });
}

function parseHopLimit(env: Env): number {
  const value = optional(env, SIDECAR_ENV.hopLimit);
  if (value === undefined) return DEFAULT_HOP_LIMIT;
  return parseNumber(SIDECAR_ENV.hopLimit, value, { min: 0, max: 255, integer: true });
}

function parseInstance(env: Env): InstanceConfig {
  const instance: InstanceConfig = { allowedAnnotations: [] };
  const labels = optional(env, SIDECAR_ENV.podLabelsFile);
  if (labels !== undefined) instance.labelsFile = absolutePath(SIDECAR_ENV.podLabelsFile, labels);
  const annotations = optional(env, SIDECAR_ENV.podAnnotationsFile);
  if (annotations !== undefined) {
    instance.annotationsFile = absolutePath(SIDECAR_ENV.podAnnotationsFile, annotations);
  }
  for (const pattern of list(env, SIDECAR_ENV.allowedAnnotations)) {
    if (pattern === "*" || /\s/.test(pattern)) {
      throw configError(
        SIDECAR_ENV.allowedAnnotations,
        `${
          JSON.stringify(pattern)
        } is neither an annotation key nor a prefix such as "example.com/*"`,
      );
    }
    instance.allowedAnnotations.push(pattern);
  }
  return instance;
}

function parsePodNetworks(env: Env): { podNetworks?: PodNetworksConfig } {
  const from = optional(env, SIDECAR_ENV.networkConfigFrom);
  if (from === undefined) return {};
  if (from !== NETWORK_CONFIG_FROM_POD_NETWORKS) {
    throw configError(
      SIDECAR_ENV.networkConfigFrom,
      `expected "${NETWORK_CONFIG_FROM_POD_NETWORKS}", got ${JSON.stringify(from)}`,
    );
  }
  const subnets = list(env, SIDECAR_ENV.podNetworkSubnets).map((text) => {
    const subnet = parseSubnet(text);
    if (subnet === undefined) {
      throw configError(
        SIDECAR_ENV.podNetworkSubnets,
        `${JSON.stringify(text)} is not a subnet such as 192.168.10.0/24 or fd00:10::/64`,
      );
    }
    return subnet;
  });
  const expectedInterfaces = interfaceNames(env, SIDECAR_ENV.podInterfaces);
  return {
    podNetworks: {
      statusFile: absolutePath(
        SIDECAR_ENV.networkStatusFile,
        optional(env, SIDECAR_ENV.networkStatusFile) ??
          `${SIDECAR_PATHS.podInfoDir}/${POD_INFO_FILES.networkStatus}`,
      ),
      subnets,
      expectedInterfaces,
    },
  };
}

/** A comma-separated variable as its non-empty, trimmed items. */
function list(env: Env, variable: string): string[] {
  return (optional(env, variable) ?? "").split(",").map((item) => item.trim()).filter((item) =>
    item !== ""
  );
}

/** A comma-separated variable of network interface names. */
function interfaceNames(env: Env, variable: string): string[] {
  const names = list(env, variable);
  for (const name of names) {
    if (!INTERFACE_NAME.test(name)) {
      throw configError(
        variable,
        `${JSON.stringify(name)} is not a valid interface name (1-15 characters)`,
      );
    }
  }
  return names;
}
