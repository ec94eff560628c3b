/**
 * ServiceAccount tokens: read from the file the kubelet keeps rotated, on every
 * request, with the expiry taken from the JWT's own `exp` claim. Reads are
 * synchronous: the file is a few kilobytes on a local tmpfs volume, and a
 * blocking read is cheaper than a trip through the runtime's thread pool.
 */

export interface TokenResponse {
  token: string;
  /** RFC 3339, from the JWT `exp`; absent when the claim cannot be read. */
  expirationTimestamp?: string;
}

/** The token file could not be read (not mounted yet, mid-rotation, empty). */
export interface TokenUnavailable {
  unavailable: string;
}

export function readToken(path: string): TokenResponse | TokenUnavailable {
  let token: string;
  try {
    token = Deno.readTextFileSync(path).trim();
  } catch (error) {
    return { unavailable: error instanceof Error ? error.name : "read failed" };
  }
  if (token === "") return { unavailable: "empty file" };
  const expiry = jwtExpiry(token);
  return expiry === undefined ? { token } : { token, expirationTimestamp: expiry.toISOString() };
}

/** The `exp` claim of a JWT as a Date, or undefined when it cannot be read. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1].length > 65536) return undefined;
  try {
    const json = atob(parts[1].replaceAll("-", "+").replaceAll("_", "/"));
    const claims: unknown = JSON.parse(json);
    if (typeof claims !== "object" || claims === null) return undefined;
    const exp = (claims as Record<string, unknown>).exp;
    if (typeof exp !== "number" || !Number.isFinite(exp) || exp <= 0 || exp > 253402300799) {
      return undefined;
    }
    return new Date(exp * 1000);
  } catch {
    return undefined;
  }
}
