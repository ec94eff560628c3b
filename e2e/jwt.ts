/**
 * Reads the claims of a Kubernetes ServiceAccount token without verifying it
 * (the API server's TokenReview does that); used to say which account a token
 * names before asking the server whether it is valid.
 */

export interface JwtParts {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function decodeSegment(segment: string, which: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) {
    throw new Error(`JWT ${which} is not base64url`);
  }
  const base64 = segment.replaceAll("-", "+").replaceAll("_", "/");
  const padded = base64 + "=".repeat((4 - base64.length % 4) % 4);
  let text: string;
  try {
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`JWT ${which} is not valid base64url UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`JWT ${which} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`JWT ${which} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

export function decodeJwt(token: string): JwtParts {
  const parts = token.trim().split(".");
  if (parts.length !== 3) {
    throw new Error(`a JWT has 3 dot-separated parts, this one has ${parts.length}`);
  }
  if (parts[2] === "") throw new Error("JWT has no signature");
  return { header: decodeSegment(parts[0], "header"), payload: decodeSegment(parts[1], "payload") };
}

export interface ServiceAccountClaims {
  namespace: string;
  serviceAccount: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  audiences: string[];
}

/** The account a ServiceAccount token names (`sub: system:serviceaccount:NS:NAME`). */
export function serviceAccountClaims(payload: Record<string, unknown>): ServiceAccountClaims {
  const sub = payload.sub;
  const match = typeof sub === "string"
    ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub)
    : null;
  if (!match) {
    throw new Error(`token subject ${JSON.stringify(sub)} is not a ServiceAccount`);
  }
  if (typeof payload.exp !== "number") throw new Error("token has no numeric exp claim");
  const aud = payload.aud;
  const audiences = typeof aud === "string"
    ? [aud]
    : Array.isArray(aud)
    ? aud.filter((a): a is string => typeof a === "string")
    : [];
  return { namespace: match[1], serviceAccount: match[2], expiresAt: payload.exp, audiences };
}

/** Takes the token out of a `/v1/token` answer: a JSON object with `token`, or the bare JWT. */
export function tokenFromBody(body: string): string {
  const trimmed = body.trim();
  if (trimmed.startsWith("{")) {
    const parsed = JSON.parse(trimmed) as Record<string, unknown>;
    const token = parsed.token ?? parsed.access_token;
    if (typeof token !== "string" || token === "") {
      throw new Error(`token answer has no "token" field: ${trimmed.slice(0, 200)}`);
    }
    return token;
  }
  if (trimmed.split(".").length === 3) return trimmed;
  throw new Error(`token answer is neither JSON nor a JWT: ${trimmed.slice(0, 200)}`);
}
