/**
 * The encrypted password a guest posts to /openstack/…/password (what
 * cloudbase-init does after setting the Windows admin password): kept at most
 * once, never overwritten, and written to IMDS_STATE_DIR so a restart of the
 * sidecar in the same pod still serves it. The file is replaced atomically
 * (write a temporary file, then rename), so a crash never leaves half of one.
 */

import type { Logger } from "../../shared/log.ts";

/** Nova's limit is 4 × 255 bytes; this leaves room for RSA keys up to 16384 bits. */
export const MAX_PASSWORD_BYTES = 4096;
export const PASSWORD_FILE_NAME = "password";

export type StoreResult = "stored" | "already_set" | { failed: string };

export interface PasswordStore {
  /** The stored base64 ciphertext, or "" when none was posted. */
  get(): string;
  /** Stores `value` unless one is stored already. */
  set(value: string): StoreResult;
  /** Where it is kept, or undefined when only in memory. */
  path: string | undefined;
}

export function createPasswordStore(stateDir: string | undefined, log: Logger): PasswordStore {
  const path = stateDir === undefined ? undefined : `${stateDir}/${PASSWORD_FILE_NAME}`;
  let value = path === undefined ? "" : load(path, log);
  return {
    path,
    get: () => value,
    set(next) {
      if (value !== "") return "already_set";
      if (path !== undefined) {
        const temporary = `${path}.tmp`;
        try {
          Deno.writeTextFileSync(temporary, next, { mode: 0o600 });
          Deno.renameSync(temporary, path);
        } catch (error) {
          log.error("the posted password could not be saved", { path, error });
          return { failed: error instanceof Error ? error.name : "write failed" };
        }
      }
      value = next;
      log.info("guest posted its encrypted password", {
        bytes: next.length,
        saved: path ?? "memory",
      });
      return "stored";
    },
  };
}

function load(path: string, log: Logger): string {
  try {
    const text = Deno.readTextFileSync(path);
    if (text !== "" && isPasswordCiphertext(text)) return text;
    if (text !== "") log.warn("ignoring a saved password that is not base64", { path });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      log.warn("the saved password cannot be read", { path, error });
    }
  }
  return "";
}

/** Standard base64 (RFC 4648 §4) with padding, decoding to at least one byte. */
export function isPasswordCiphertext(text: string): boolean {
  return text.length > 0 && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text);
}
