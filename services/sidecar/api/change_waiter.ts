/**
 * Waiting for a document to change (GCP's `wait_for_change`): a request
 * parks until the document's version differs from the one it names, or its
 * timeout passes. One timer checks the version while anyone waits; waiting
 * requests are capped per client and in total, so waiting guests cannot
 * exhaust the sidecar.
 */

import { repeat, type Repeating } from "../../shared/sleep.ts";

export interface WaitLimits {
  perClient: number;
  total: number;
  /** How often the version is checked while someone waits. */
  checkIntervalMs: number;
}

export const DEFAULT_WAIT_LIMITS: WaitLimits = { perClient: 4, total: 64, checkIntervalMs: 250 };

export type WaitOutcome = "changed" | "timeout" | "stopping";

export interface ChangeWaiter {
  /** Resolves when the version differs from `version`; a string says why the wait is refused. */
  wait(client: string, version: string, timeoutMs: number): Promise<WaitOutcome> | string;
  /** Ends every wait ("stopping"), e.g. at shutdown. */
  stop(): void;
}

interface Waiter {
  client: string;
  version: string;
  deadline: number;
  resolve(outcome: WaitOutcome): void;
}

export function createChangeWaiter(
  currentVersion: () => string,
  limits: WaitLimits = DEFAULT_WAIT_LIMITS,
): ChangeWaiter {
  const waiters = new Set<Waiter>();
  const perClient = new Map<string, number>();
  /** Checks the version while anyone waits (not setInterval: it loads Node.js timers). */
  let checks: Repeating | undefined;

  const finish = (waiter: Waiter, outcome: WaitOutcome): void => {
    waiters.delete(waiter);
    const left = (perClient.get(waiter.client) ?? 1) - 1;
    if (left === 0) perClient.delete(waiter.client);
    else perClient.set(waiter.client, left);
    if (waiters.size === 0 && checks !== undefined) {
      checks.stop();
      checks = undefined;
    }
    waiter.resolve(outcome);
  };

  const check = (): void => {
    const version = currentVersion();
    const now = Date.now();
    for (const waiter of [...waiters]) {
      if (waiter.version !== version) finish(waiter, "changed");
      else if (now >= waiter.deadline) finish(waiter, "timeout");
    }
  };

  return {
    wait(client, version, timeoutMs) {
      if (waiters.size >= limits.total) {
        return `${limits.total} requests are already waiting for a change; retry without wait=true or later`;
      }
      if ((perClient.get(client) ?? 0) >= limits.perClient) {
        return `${client} already has ${limits.perClient} requests waiting for a change`;
      }
      if (currentVersion() !== version) return Promise.resolve("changed");
      return new Promise<WaitOutcome>((resolve) => {
        waiters.add({ client, version, deadline: Date.now() + timeoutMs, resolve });
        perClient.set(client, (perClient.get(client) ?? 0) + 1);
        checks ??= repeat(limits.checkIntervalMs, check);
      });
    },
    stop() {
      for (const waiter of [...waiters]) finish(waiter, "stopping");
    },
  };
}
