/** Header values the metadata API's answers share. */

/**
 * Seconds a client is told to wait (Retry-After) before it asks again for
 * something that is not ready yet, or after it was turned away for waiting in
 * too many requests at once.
 */
export const RETRY_AFTER_SECONDS = 1;

/** A text document: meta-data, user-data, an OpenStack listing. */
export const TEXT_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/plain; charset=utf-8",
};

/** A text document no cache may keep: a password, a session token, what may change any moment. */
export const NO_STORE_TEXT_HEADERS: Readonly<Record<string, string>> = {
  ...TEXT_HEADERS,
  "cache-control": "no-store",
};
