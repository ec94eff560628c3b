/**
 * Seconds a client is told to wait (Retry-After) before it asks again for
 * something that is not ready yet, or after it was turned away for waiting in
 * too many requests at once.
 */
export const RETRY_AFTER_SECONDS = 1;
