/**
 * Waiting without setTimeout. In Deno 2.9 the global setTimeout and
 * setInterval are Node.js-compatible timers: the first call loads that layer,
 * about 10 ms of start-up and 4.5 MiB of resident memory (1.5 MiB of it
 * private) in every process that uses one. AbortSignal.timeout runs on the
 * runtime's own timer and costs neither; it also fires under V8's
 * --single-threaded, where Atomics.waitAsync timeouts never do.
 *
 * Such a wait cannot be cancelled and keeps the process alive until it ends,
 * so loops built on it are for short periods (the connection sweep's second).
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    AbortSignal.timeout(Math.max(0, ms)).addEventListener("abort", () => resolve(), {
      once: true,
    });
  });
}

export interface Repeating {
  /** No further call; one wait already begun still runs out (at most one period). */
  stop(): void;
}

/** Calls `tick` every `periodMs` milliseconds until stopped. */
export function repeat(periodMs: number, tick: () => void): Repeating {
  let stopped = false;
  (async () => {
    while (!stopped) {
      await sleep(periodMs);
      if (!stopped) tick();
    }
  })();
  return { stop: () => void (stopped = true) };
}
