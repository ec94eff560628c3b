/**
 * The metadata HTTP server: the HTTP/1.1 server of http1_server.ts (timeouts,
 * connection caps, header size, routing on the request target) plus the rules
 * every request passes before it reaches an endpoint (rate limit, no proxies,
 * no bodies, known path, allowed method, `Metadata: true` where required), and
 * one log line per request.
 */

import { METADATA_HEADER, SESSION_PATH } from "../../shared/contract.ts";
import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import { lineWriter, type Logger } from "../../shared/log.ts";
import type { SidecarConfig } from "../config.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../http/connection_limits.ts";
import { type ConnectionInfo, type HttpRequest, serveHttp1 } from "../http/http1_server.ts";
import { createRateLimiter } from "./rate_limit.ts";
import { receivePost } from "./request_body.ts";
import { createRoutes, type HeaderLookup, type Route } from "./routes.ts";
import { createSessionStore, issueSession, sessionRefusal, type SessionStore } from "./sessions.ts";

export interface MetadataServer {
  addr: Deno.NetAddr;
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

export interface MetadataServerOptions {
  hostname?: string;
  port?: number;
  signal?: AbortSignal;
  onListen?: (addr: Deno.NetAddr) => void;
  /** Timeouts and connection caps (see connection_limits.ts); defaults suit production. */
  connectionLimits?: Partial<ConnectionLimits>;
  /** More addresses served by the same handler (the IPv6 metadata address), each with its caps. */
  alsoListen?: { hostname: string; port: number }[];
}

const ALLOWED_METHODS = "GET, HEAD";
const METADATA_HEADER_NAME = METADATA_HEADER.toLowerCase();
/** The one value the Metadata header accepts, compared exactly (as GCP compares Metadata-Flavor). */
const METADATA_HEADER_VALUE = "true";
/**
 * Headers a proxy adds (`_` spelled as `-`: CGI-style servers read X_Forwarded_For as
 * X-Forwarded-For). The service must never be reached through a proxy in the guest.
 */
const PROXY_HEADERS = /^(?:forwarded|via|x-real-ip|x-forwarded-.+)$/;

export function startMetadataServer(
  config: SidecarConfig,
  log: Logger,
  options: MetadataServerOptions = {},
): MetadataServer {
  // Ends requests that wait for a change, so a stop does not wait for their timeouts.
  const stopping = new AbortController();
  options.signal?.addEventListener("abort", () => stopping.abort());
  const handler = createHandler(config, log, stopping.signal);
  const listen = (hostname: string, port: number, onListen?: (addr: Deno.NetAddr) => void) =>
    serveHttp1({
      hostname,
      port,
      limits: { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits },
      log,
      onListen: (addr) => {
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        log.info("metadata server listening", { address: `${host}:${addr.port}` });
        onListen?.(addr);
      },
      onError: (error) => {
        log.error("request failed", { error });
        return errorAnswer(500, "internal_error", "the metadata service failed to answer");
      },
    }, handler);
  const server = listen(
    options.hostname ?? config.listen.hostname,
    options.port ?? config.listen.port,
    options.onListen,
  );
  const servers = [server];
  for (const extra of options.alsoListen ?? []) {
    try {
      servers.push(listen(extra.hostname, extra.port));
    } catch (error) {
      // The first address is the one every guest can use; the others are extra.
      log.warn(`cannot serve on ${extra.hostname}:${extra.port}; serving on the other addresses`, {
        error,
      });
    }
  }
  const shutdownAll = () => Promise.all(servers.map((each) => each.shutdown())).then(() => {});
  options.signal?.addEventListener("abort", shutdownAll);
  return {
    addr: server.addr,
    finished: Promise.all(servers.map((each) => each.finished)).then(() => {}),
    shutdown: async () => {
      stopping.abort();
      await shutdownAll();
    },
  };
}

export type MetadataHandler = (
  request: HttpRequest,
  info: ConnectionInfo,
) => PlainResponse | Promise<PlainResponse>;

export function createHandler(
  config: SidecarConfig,
  log: Logger,
  stopping?: AbortSignal,
): MetadataHandler {
  const routes = createRoutes(config, log, stopping);
  const sessions = createSessionStore();
  routes.set(SESSION_PATH, {
    protected: false,
    handle: () => errorAnswer(500, "internal_error", "the session route answers PUT only"),
    put: (fields, client) => issueSession(sessions, fields, client),
  });
  const rules: RequestRules = { sessions, sessionsRequired: config.sessionsRequired };
  const limiter = createRateLimiter(config.rateLimit);
  const failed = (path: string, error: unknown): PlainResponse => {
    log.error("request failed", { path, error });
    return errorAnswer(500, "internal_error", "the metadata service failed to answer");
  };
  const requestLine = lineWriter(log, "info", "request", [
    "method",
    "path",
    "status",
    "durationMs",
    "client",
  ]);
  const logged = (
    request: HttpRequest,
    client: string,
    started: number,
    response: PlainResponse,
  ): PlainResponse => {
    requestLine({
      method: request.method,
      path: request.path,
      status: response.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      client,
    });
    return response;
  };
  return (request, info) => {
    const started = request.receivedAt;
    const client = info.remoteAddr.hostname;
    let response: PlainResponse | Promise<PlainResponse>;
    try {
      response = answer(
        request,
        request.fields,
        request,
        client,
        routes,
        rules,
        limiter.take(client),
      );
    } catch (error) {
      response = failed(request.path, error);
    }
    if (!(response instanceof Promise)) return logged(request, client, started, response);
    return response.catch((error) => failed(request.path, error)).then((answered) =>
      logged(request, client, started, answered)
    );
  };
}

/** The per-server state the rules below need. */
interface RequestRules {
  sessions: SessionStore;
  sessionsRequired: boolean;
}

function answer(
  request: HttpRequest,
  /** The header fields as parsed: cheaper to read than request.headers. */
  fields: ReadonlyMap<string, string>,
  url: RequestTarget,
  client: string,
  routes: Map<string, Route>,
  rules: RequestRules,
  retryAfter: number,
): PlainResponse | Promise<PlainResponse> {
  if (retryAfter > 0) {
    return errorAnswer(
      429,
      "rate_limited",
      `too many requests from ${client}; retry after ${retryAfter} s`,
      { headers: { "retry-after": String(retryAfter) } },
    );
  }
  const proxyHeader = relayedBy(fields);
  if (proxyHeader !== undefined) {
    return errorAnswer(
      403,
      "forwarded_request",
      `requests relayed by a proxy are refused (the request carries ${proxyHeader})`,
    );
  }
  const route = routes.get(url.path) ??
    routes.get(url.path.slice(0, url.path.lastIndexOf("/") + 1) + "*");
  // The one write: a POST to a route that takes one (the guest's password).
  if (route?.post && request.method === "POST") {
    return receivePost(request.body, fields.get("content-length"), url.path, route.post);
  }
  if (route !== undefined && request.method === "POST") {
    return errorAnswer(405, "method_not_allowed", `POST is not allowed on ${url.path}; use GET`, {
      headers: { allow: ALLOWED_METHODS, connection: "close" },
    });
  }
  if (hasBody(fields)) {
    // The body is never read, so the connection cannot be reused.
    return errorAnswer(413, "body_not_allowed", "requests to the metadata service have no body", {
      headers: { connection: "close" },
    });
  }
  if (route === undefined) {
    return errorAnswer(404, "not_found", `no such endpoint: ${url.path}`);
  }
  if (route.put) {
    if (request.method === "PUT") return route.put(fields, client);
    return errorAnswer(
      405,
      "method_not_allowed",
      `${request.method} is not allowed on ${url.path}; use PUT`,
      { headers: { allow: "PUT" } },
    );
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorAnswer(
      405,
      "method_not_allowed",
      `${request.method} is not allowed on ${url.path}; use GET`,
      { headers: { allow: ALLOWED_METHODS } },
    );
  }
  if (route.protected && fields.get(METADATA_HEADER_NAME) !== METADATA_HEADER_VALUE) {
    return errorAnswer(
      400,
      "missing_header",
      `${url.path} requires the header "${METADATA_HEADER}: true"`,
    );
  }
  const refused = sessionRefusal(
    rules.sessions,
    { path: url.path, fields, client },
    route.protected,
    rules.sessionsRequired,
  );
  if (refused) return refused;
  return route.handle(url.query, client, { path: url.path, headers: fieldLookup(fields) });
}

/** The first header that says a proxy relayed the request, if any. */
function relayedBy(fields: ReadonlyMap<string, string>): string | undefined {
  for (const name of fields.keys()) {
    // Every proxy header starts with f, v or x: most names need no pattern.
    const first = name.charCodeAt(0);
    if (first !== 0x66 && first !== 0x76 && first !== 0x78) continue;
    if (PROXY_HEADERS.test(name.replaceAll("_", "-"))) return name;
  }
  return undefined;
}

/** Path and query of a request target. */
interface RequestTarget {
  path: string;
  /** Without the "?"; empty when there is none. */
  query: string;
}

/** Header lookup for routes, by any spelling of the name, over the parsed fields. */
function fieldLookup(fields: ReadonlyMap<string, string>): HeaderLookup {
  return { get: (name) => fields.get(name.toLowerCase()) ?? null };
}

function hasBody(fields: ReadonlyMap<string, string>): boolean {
  if (fields.has("transfer-encoding")) return true;
  const length = fields.get("content-length");
  return length !== undefined && length.trim() !== "0";
}
