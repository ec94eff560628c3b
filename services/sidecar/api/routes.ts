/**
 * The metadata API's endpoints: what each path answers and whether it needs
 * the `Metadata: true` header. Cross-cutting rules (methods, proxies, rate
 * limits, sizes) live in server.ts.
 */

import type { Logger } from "../../shared/log.ts";
import { errorAnswer, jsonAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import type { Identity, SidecarConfig } from "../config.ts";
import { type DocumentReader, documentReader } from "./cloud_init_files.ts";
import { readToken } from "./token.ts";
import { RETRY_AFTER_SECONDS, TEXT_HEADERS } from "./answer_headers.ts";
import { clientMacLookup } from "./client_mac.ts";
import { openstackRoutes } from "./openstack_routes.ts";
import { createPasswordStore } from "./password_store.ts";
import { type SshKey, sshKeyReader } from "./ssh_keys.ts";
import { identityDocument, instanceId } from "./identity_document.ts";
import { guestMetaData, instanceReader, type InstanceState } from "./instance_document.ts";
import { instanceRoutes } from "./instance_routes.ts";
import {
  type GeneratedNetworkConfig,
  networkConfigResponse,
  podNetworkConfigSource,
} from "./pod_network_source.ts";

export interface Route {
  /** Requires the `Metadata: true` header (not sent by cloud-init). */
  protected: boolean;
  /** `query` is the raw query string, without the "?"; `client` the peer's address. */
  handle(
    query: string,
    client?: string,
    request?: RouteRequest,
  ): PlainResponse | Promise<PlainResponse>;
  /** Accepts POST: the API's only write (the guest's encrypted password). */
  post?: PostRoute;
  /** Answers PUT, and only PUT (a session token: sessions.ts). */
  put?: (fields: ReadonlyMap<string, string>, client: string) => PlainResponse;
}

/** What a route may need of the request beyond its query. */
export interface RouteRequest {
  path: string;
  headers: HeaderLookup;
}

/** Reads a request header by name (as Headers.get does). */
export interface HeaderLookup {
  get(name: string): string | null;
}

export interface PostRoute {
  /** Larger bodies are refused with 413 before they are read. */
  maxBytes: number;
  accept(body: Uint8Array): PlainResponse | Promise<PlainResponse>;
}

const JSON_TYPE = { "content-type": "application/json" };

/**
 * Every endpoint by path. A path ending in `/*` stands for every path below it.
 * `stopping` ends requests that wait for a change when the server stops.
 */
export function createRoutes(
  config: SidecarConfig,
  log: Logger,
  stopping?: AbortSignal,
): Map<string, Route> {
  // Made once: the same bytes answer every request.
  const identity: PlainResponse = {
    status: 200,
    headers: JSON_TYPE,
    body: new TextEncoder().encode(JSON.stringify(identityDocument(config.identity)) + "\n"),
  };
  const healthy: PlainResponse = {
    status: 200,
    headers: TEXT_HEADERS,
    body: new TextEncoder().encode("OK"),
  };
  const sshKeys = sshKeyReader(config.guestAccess.sshKeysDir, log);
  const userData = documentReader(config.cloudInit.userData);
  const vendorData = documentReader(config.cloudInit.vendorData);
  const clientMac = clientMacLookup();
  const readInstance = instanceReader(config.identity, {
    labels: config.instance.labelsFile === undefined
      ? undefined
      : documentReader({ kind: "file", path: config.instance.labelsFile }),
    annotations: config.instance.annotationsFile === undefined
      ? undefined
      : documentReader({ kind: "file", path: config.instance.annotationsFile }),
    allowedAnnotations: config.instance.allowedAnnotations,
  }, log);
  const instance = instanceRoutes(readInstance);
  stopping?.addEventListener("abort", instance.stop);
  // A network-config the user wrote always wins over the one generated from the pod's networks.
  const generated = config.podNetworks && config.cloudInit.networkConfig.kind === "none"
    ? podNetworkConfigSource(config.podNetworks, log, clientMac)
    : undefined;
  const networkConfig = generated === undefined
    ? documentReader(config.cloudInit.networkConfig)
    : generatedReader(generated);
  const openstack = openstackRoutes(config, {
    userData,
    vendorData,
    networkConfig,
    sshKeys,
    passwords: createPasswordStore(config.guestAccess.stateDir, log),
    clientMac,
    instance: readInstance,
  }, log);
  return new Map<string, Route>([
    ["/healthz", { protected: false, handle: () => healthy }],
    ["/v1/identity", {
      protected: true,
      handle: () => identity,
    }],
    ["/v1/token", { protected: true, handle: tokenHandler(config, log) }],
    ["/v1/meta-data", {
      protected: false,
      handle: () => ({
        status: 200,
        headers: TEXT_HEADERS,
        body: metaDataDocument(config.identity, sshKeys(), readInstance()),
      }),
    }],
    ["/v1/user-data", documentRoute("user-data", config.cloudInit.userData, log, userData)],
    ["/v1/vendor-data", documentRoute("vendor-data", config.cloudInit.vendorData, log, vendorData)],
    [
      "/v1/network-config",
      generated === undefined
        ? documentRoute("network-config", config.cloudInit.networkConfig, log, networkConfig)
        : {
          protected: false,
          handle: (_query, client) => networkConfigResponse(generated(client ?? "")),
        },
    ],
    ...instance.routes,
    ...openstack,
  ]);
}

/**
 * NoCloud meta-data. The names are validated DNS names, so they need no YAML
 * quoting; SSH keys are JSON strings, which YAML reads as double-quoted ones.
 */
export function metaDataDocument(
  identity: Identity,
  keys: readonly SshKey[] = [],
  instance?: InstanceState,
): string {
  const head = `instance-id: ${instanceId(identity)}\nlocal-hostname: ${identity.vmName}\n`;
  const keyLines = keys.length === 0
    ? ""
    : "public-keys:\n" + keys.map((key) => `  - ${JSON.stringify(key.line)}\n`).join("");
  return head + keyLines + instanceMetaData(instance);
}

/**
 * The VM's labels and custom metadata for cloud-init (`ds.meta_data.labels`,
 * `ds.meta_data.meta` in jinja templates), as JSON objects, which YAML reads as
 * flow mappings. Each is left out when empty (see guestMetaData).
 */
function instanceMetaData(instance: InstanceState | undefined): string {
  const { labels, meta } = guestMetaData(instance);
  return (Object.keys(labels).length > 0 ? `labels: ${JSON.stringify(labels)}\n` : "") +
    (Object.keys(meta).length > 0 ? `meta: ${JSON.stringify(meta)}\n` : "");
}

/** The generated network-config as a document for /openstack (network_data.json). */
function generatedReader(generated: (client: string) => GeneratedNetworkConfig): DocumentReader {
  return () => {
    const result = generated("");
    return "document" in result
      ? { bytes: new TextEncoder().encode(result.document) }
      : { unavailable: "the network configuration generated from the pod's networks is not ready" };
  };
}

function tokenHandler(config: SidecarConfig, log: Logger): (query: string) => PlainResponse {
  const known = Object.keys(config.audienceTokens);
  return (query) => {
    const audience = query === "" ? null : new URLSearchParams(query).get("audience");
    let path = config.tokenPath;
    if (audience !== null) {
      if (!Object.hasOwn(config.audienceTokens, audience)) {
        return errorAnswer(
          404,
          "unknown_audience",
          known.length === 0
            ? `no token is configured for audience "${audience}"; only the default token is available (omit ?audience=)`
            : `no token is configured for audience "${audience}"; known audiences: ${
              known.join(", ")
            }`,
          { details: { audiences: known } },
        );
      }
      path = config.audienceTokens[audience];
    }
    const result = readToken(path);
    if ("unavailable" in result) {
      log.warn("token file unreadable", { path, reason: result.unavailable, audience });
      return errorAnswer(
        503,
        "token_unavailable",
        "the ServiceAccount token is not available yet; retry shortly",
        { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
      );
    }
    return jsonAnswer(200, result, { "cache-control": "no-store" });
  };
}

function documentRoute(
  name: string,
  source: SidecarConfig["cloudInit"]["userData"],
  log: Logger,
  read: DocumentReader,
): Route {
  return {
    protected: false,
    handle: () => {
      const result = read();
      if ("unavailable" in result) {
        log.warn(`${name} file unreadable`, {
          path: source.kind === "file" ? source.path : undefined,
          reason: result.unavailable,
        });
        return errorAnswer(
          503,
          "data_unavailable",
          `${name} is configured from a file that cannot be read yet; retry shortly`,
          { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
        );
      }
      return { status: 200, headers: TEXT_HEADERS, body: result.bytes };
    },
  };
}
