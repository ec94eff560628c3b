/**
 * The metadata API's endpoints: what each path answers and whether it needs
 * the `Metadata: true` header. Cross-cutting rules (methods, proxies, rate
 * limits, sizes) live in server.ts.
 */

import type { Logger } from "../../shared/log.ts";
import { errorResponse, jsonResponse } from "../../shared/http_errors.ts";
import type { Identity, SidecarConfig } from "../config.ts";
import { type DocumentReader, documentReader } from "./cloud_init_files.ts";
import { readToken } from "./token.ts";

export interface Route {
  /** Requires the `Metadata: true` header (not sent by cloud-init). */
  protected: boolean;
  /** `query` is the raw query string, without the "?". */
  handle(query: string): Response;
}

/** Seconds a client should wait before retrying when something is not ready yet. */
export const RETRY_AFTER_SECONDS = 1;

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const JSON_TYPE = { "content-type": "application/json" };

export function createRoutes(config: SidecarConfig, log: Logger): Map<string, Route> {
  const identity = JSON.stringify(identityDocument(config.identity)) + "\n";
  const metaData = new TextEncoder().encode(metaDataDocument(config.identity));
  return new Map<string, Route>([
    ["/healthz", { protected: false, handle: () => new Response("OK", { headers: TEXT }) }],
    ["/v1/identity", {
      protected: true,
      handle: () => new Response(identity, { headers: JSON_TYPE }),
    }],
    ["/v1/token", { protected: true, handle: tokenHandler(config, log) }],
    ["/v1/meta-data", {
      protected: false,
      handle: () => new Response(metaData, { headers: TEXT }),
    }],
    ["/v1/user-data", documentRoute("user-data", config.cloudInit.userData, log)],
    ["/v1/vendor-data", documentRoute("vendor-data", config.cloudInit.vendorData, log)],
    ["/v1/network-config", documentRoute("network-config", config.cloudInit.networkConfig, log)],
  ]);
}

/** What /v1/identity returns: the required names plus whatever else is known. */
export function identityDocument(identity: Identity): Record<string, string> {
  const document: Record<string, string> = {
    namespace: identity.namespace,
    serviceAccountName: identity.serviceAccountName,
    vmName: identity.vmName,
    instanceId: instanceId(identity),
  };
  if (identity.podName) document.podName = identity.podName;
  if (identity.vmiUid) document.vmiUid = identity.vmiUid;
  if (identity.nodeName) document.nodeName = identity.nodeName;
  return document;
}

export function instanceId(identity: Identity): string {
  return `${identity.namespace}-${identity.vmName}`;
}

/** NoCloud meta-data. The names are validated DNS names, so they need no YAML quoting. */
export function metaDataDocument(identity: Identity): string {
  return `instance-id: ${instanceId(identity)}\nlocal-hostname: ${identity.vmName}\n`;
}

function tokenHandler(config: SidecarConfig, log: Logger): (query: string) => Response {
  const known = Object.keys(config.audienceTokens);
  return (query) => {
    const audience = query === "" ? null : new URLSearchParams(query).get("audience");
    let path = config.tokenPath;
    if (audience !== null) {
      if (!Object.hasOwn(config.audienceTokens, audience)) {
        return errorResponse(
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
      return errorResponse(
        503,
        "token_unavailable",
        "the ServiceAccount token is not available yet; retry shortly",
        { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
      );
    }
    return jsonResponse(200, result, { "cache-control": "no-store" });
  };
}

function documentRoute(
  name: string,
  source: SidecarConfig["cloudInit"]["userData"],
  log: Logger,
): Route {
  const read: DocumentReader = documentReader(source);
  return {
    protected: false,
    handle: () => {
      const result = read();
      if ("unavailable" in result) {
        log.warn(`${name} file unreadable`, {
          path: source.kind === "file" ? source.path : undefined,
          reason: result.unavailable,
        });
        return errorResponse(
          503,
          "data_unavailable",
          `${name} is configured from a file that cannot be read yet; retry shortly`,
          { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
        );
      }
      return new Response(result.bytes, { headers: TEXT });
    },
  };
}
