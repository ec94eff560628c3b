/**
 * Session tokens, as AWS's IMDSv2 has them: `PUT /v1/session` with the lifetime in
 * X-Imds-Session-Ttl-Seconds returns an opaque token; when sessions are required, identity,
 * token and the instance document also need it in X-Imds-Session. A server-side request
 * forgery that can only make GET requests (a URL fetcher, an image proxy) cannot obtain one,
 * and the PUT is refused when a proxy relayed it (server.ts refuses X-Forwarded-For and kin).
 *
 * Tokens are 256 random bits, bound to the client address that asked, held in memory only
 * (a restarted sidecar has none: guests ask again) and capped in number: past the cap the
 * oldest is forgotten.
 */

import {
  SESSION_HEADER,
  SESSION_PATH,
  SESSION_TTL_HEADER,
  SESSION_TTL_SECONDS,
} from "../../shared/contract.ts";
import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import { NO_STORE_TEXT_HEADERS } from "./answer_headers.ts";

/** Header names as the server's parsed fields hold them (lower case). */
const SESSION_HEADER_NAME = SESSION_HEADER.toLowerCase();
const SESSION_TTL_HEADER_NAME = SESSION_TTL_HEADER.toLowerCase();

/** Sessions held at once; only the guest can ask for them, within the rate limit. */
export const MAX_SESSIONS = 1024;
/** Longest SESSION_TTL_HEADER value accepted, in characters. */
const MAX_TTL_TEXT = 8;
const TOKEN_BYTES = 32;

export interface Session {
  client: string;
  /** performance.now() milliseconds. */
  expiresAt: number;
}

export type SessionCheck =
  | { valid: true }
  | { valid: false; reason: "unknown" | "expired" | "other_client" };

export interface SessionStore {
  /** A new token for `client`, valid for `ttlSeconds`. */
  issue(client: string, ttlSeconds: number): string;
  check(token: string, client: string): SessionCheck;
  readonly size: number;
}

export function createSessionStore(
  options: { max?: number; now?: () => number } = {},
): SessionStore {
  const max = options.max ?? MAX_SESSIONS;
  const now = options.now ?? (() => performance.now());
  const sessions = new Map<string, Session>();
  const dropExpired = (time: number) => {
    for (const [token, session] of sessions) {
      if (session.expiresAt <= time) sessions.delete(token);
    }
  };
  return {
    issue(client, ttlSeconds) {
      const time = now();
      if (sessions.size >= max) dropExpired(time);
      // Still full: forget the oldest (Map keeps insertion order).
      while (sessions.size >= max) sessions.delete(sessions.keys().next().value!);
      const token = base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)));
      sessions.set(token, { client, expiresAt: time + ttlSeconds * 1000 });
      return token;
    },
    check(token, client) {
      const session = sessions.get(token);
      if (session === undefined) return { valid: false, reason: "unknown" };
      if (session.expiresAt <= now()) {
        sessions.delete(token);
        return { valid: false, reason: "expired" };
      }
      if (session.client !== client) return { valid: false, reason: "other_client" };
      return { valid: true };
    },
    get size() {
      return sessions.size;
    },
  };
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The answer to `PUT /v1/session` (proxies and bodies were refused before this). */
export function issueSession(
  store: SessionStore,
  fields: ReadonlyMap<string, string>,
  client: string,
): PlainResponse {
  const text = fields.get(SESSION_TTL_HEADER_NAME) ?? null;
  const { min, max } = SESSION_TTL_SECONDS;
  if (text === null) {
    return errorAnswer(
      400,
      "missing_session_ttl",
      `${SESSION_PATH} requires the header "${SESSION_TTL_HEADER}: <seconds>" (${min}-${max})`,
    );
  }
  const ttl = text.length <= MAX_TTL_TEXT && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(ttl >= min && ttl <= max)) {
    return errorAnswer(
      400,
      "invalid_session_ttl",
      `${SESSION_TTL_HEADER} must be a whole number of seconds from ${min} to ${max}, got ${
        JSON.stringify(text.slice(0, 32))
      }`,
    );
  }
  const token = store.issue(client, ttl);
  return {
    status: 200,
    headers: { ...NO_STORE_TEXT_HEADERS, [SESSION_TTL_HEADER_NAME]: String(ttl) },
    body: token,
  };
}

/**
 * The session rule for one request, or undefined when it passes. `needsMetadataHeader` routes
 * (identity, token, instance document) need a valid session when `required`, and a session
 * that is sent must be valid either way; every other path must not carry one.
 */
export function sessionRefusal(
  store: SessionStore,
  request: { path: string; fields: ReadonlyMap<string, string>; client: string },
  needsMetadataHeader: boolean,
  required: boolean,
): PlainResponse | undefined {
  const token = request.fields.get(SESSION_HEADER_NAME);
  if (!needsMetadataHeader) {
    if (token === undefined) return undefined;
    return errorAnswer(
      400,
      "session_not_allowed",
      `${request.path} takes no session token; send ${SESSION_HEADER} only on identity, token and instance requests`,
    );
  }
  if (token === undefined) {
    if (!required) return undefined;
    return errorAnswer(
      401,
      "missing_session",
      `${request.path} requires a session token in ${SESSION_HEADER}; get one with PUT ${SESSION_PATH} and the header ${SESSION_TTL_HEADER}`,
    );
  }
  const result = store.check(token, request.client);
  if (result.valid) return undefined;
  const message = {
    unknown: "the session token is not one this service issued (or it was issued before a restart)",
    expired: "the session token has expired",
    other_client: "the session token was issued to another address",
  }[result.reason];
  return errorAnswer(
    401,
    result.reason === "expired" ? "session_expired" : "invalid_session",
    `${message}; get a new one with PUT ${SESSION_PATH}`,
  );
}
