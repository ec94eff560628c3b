/**
 * Waiting for the cluster with a deadline: a check is repeated until it gives
 * a value or the deadline passes, and a timeout says what was awaited and what
 * was last seen, so a failed run explains itself.
 */

export type PollResult<T> = { done: true; value: T } | { done: false; observed: string };

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface PollOptions {
  timeoutMs: number;
  intervalMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
}

export function done<T>(value: T): PollResult<T> {
  return { done: true, value };
}

export function waiting<T = never>(observed: string): PollResult<T> {
  return { done: false, observed };
}

/**
 * Calls `check` until it returns `done(value)`; errors thrown by `check` count
 * as "not yet" (the API may be briefly unavailable) and are reported if the
 * deadline passes.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<PollResult<T>>,
  options: PollOptions,
): Promise<T> {
  const clock = options.clock ?? realClock;
  const interval = options.intervalMs ?? 2000;
  const deadline = clock.now() + options.timeoutMs;
  let observed = "nothing yet";
  let attempts = 0;
  while (true) {
    options.signal?.throwIfAborted();
    attempts++;
    try {
      const result = await check();
      if (result.done) return result.value;
      observed = result.observed;
    } catch (error) {
      observed = `error: ${error instanceof Error ? error.message : String(error)}`;
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      throw new Error(
        `timed out after ${Math.round(options.timeoutMs / 1000)}s (${attempts} checks) ` +
          `waiting for ${what}; last seen: ${observed}`,
      );
    }
    await clock.sleep(Math.min(interval, left));
  }
}
