/**
 * Bounds the memory reviews take: a review's body is read and parsed only
 * when the bytes of the reviews in progress leave room for it (one review is
 * always let through, however large). Reviews beyond that wait in arrival
 * order with their bodies unread (the runtime still reads them off the
 * connection, so waiting has a budget of its own); when that is full, a new
 * one is refused at once (503) so the API server applies the webhook's
 * failurePolicy instead of waiting for a timeout, and the webhook is not
 * killed for memory with every review it holds. A waiting review whose client went away leaves the queue unread.
 *
 * Queueing rather than refusing is the point: with failurePolicy Ignore (the
 * chart's default), every refused pod review starts an opted-in VM without
 * its metadata service, while a queued one is only answered later (the API
 * server waits up to the webhook's timeoutSeconds).
 */

import { getHeapStatistics } from "node:v8";

const MIB = 1024 * 1024;

/**
 * Resident memory the webhook needs with no review in progress: the runtime,
 * the TLS listener, the loaded code and the young generation (about 55 MiB
 * measured idle), plus what a burst leaves behind until the next collection.
 */
export const IDLE_RESERVE_BYTES = 96 * MIB;
/**
 * Resident memory per byte of a review in progress: the body, its text, the
 * parsed object and the response. Measured: a 3 MiB pod of many small objects
 * took about 24 MiB (8x); 10x leaves a margin.
 */
export const MEMORY_PER_REVIEW_BYTE = 10;
/**
 * Resident memory per byte of a waiting review: the runtime reads a body off
 * the connection even while the webhook leaves it unread (measured about
 * 2.6x: TLS records and buffers, not freed at once); 5x leaves a margin.
 */
export const MEMORY_PER_WAITING_BYTE = 5;
/** Share of the memory left after the idle reserve given to reviews in progress. */
const IN_PROGRESS_SHARE = 0.5;
/** V8 heap per byte of review in progress (the parsed object); measured about 5x. */
export const HEAP_PER_REVIEW_BYTE = 6;
/** Heap the webhook uses with no review in progress, with room to spare. */
export const IDLE_HEAP_BYTES = 24 * MIB;
/** Without a known memory limit, budget as for the chart's default (192Mi). */
export const DEFAULT_MEMORY_LIMIT_BYTES = 192 * MIB;

export interface ReviewBudget {
  /** Bytes of review bodies in progress at once (one review always passes). */
  bytesInProgress: number;
  /** Bytes of review bodies waiting (one review may always wait). */
  bytesWaiting: number;
}

/**
 * The budget for a container with `memoryLimitBytes` (undefined: unknown)
 * and a V8 heap of `heapLimitBytes`: reviews in progress get a share of the
 * memory left after the idle reserve, within what the heap can hold, and
 * waiting reviews the rest.
 */
export function reviewBudget(
  memoryLimitBytes: number = DEFAULT_MEMORY_LIMIT_BYTES,
  heapLimitBytes: number = getHeapStatistics().heap_size_limit,
): ReviewBudget {
  const spare = Math.max(0, memoryLimitBytes - IDLE_RESERVE_BYTES);
  const byHeap = Math.max(0, (heapLimitBytes - IDLE_HEAP_BYTES) / HEAP_PER_REVIEW_BYTE);
  const byMemory = spare * IN_PROGRESS_SHARE / MEMORY_PER_REVIEW_BYTE;
  return {
    bytesInProgress: Math.floor(Math.min(byHeap, byMemory)),
    bytesWaiting: Math.floor(spare * (1 - IN_PROGRESS_SHARE) / MEMORY_PER_WAITING_BYTE),
  };
}

export type Admission =
  | { admitted: true; release: () => void }
  | { admitted: false; reason: "overloaded" | "abandoned" };

export interface ReviewGate {
  /**
   * Admits a review of `bytes` at once when none is waiting and it fits (the
   * common case, with no promise and no watch on the client); undefined when
   * it would have to wait or be refused, which `enter` decides.
   */
  tryEnter(bytes: number): (() => void) | undefined;
  /**
   * Waits until a review of `bytes` may proceed. `abandoned` resolves when
   * the client goes away while it waits.
   */
  enter(bytes: number, abandoned: Promise<unknown>): Promise<Admission>;
  /** Reviews in progress, their bytes, and reviews waiting. */
  load(): { inProgress: number; bytes: number; waiting: number; waitingBytes: number };
}

interface Waiter {
  bytes: number;
  admit: () => void;
}

export function createReviewGate(budget: ReviewBudget): ReviewGate {
  let inProgress = 0;
  let bytes = 0;
  let waitingBytes = 0;
  const queue: Waiter[] = [];

  const fits = (size: number) => inProgress === 0 || bytes + size <= budget.bytesInProgress;

  function start(size: number): () => void {
    inProgress++;
    bytes += size;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      inProgress--;
      bytes -= size;
      // First come, first served: a large review at the head is not overtaken.
      while (queue.length > 0 && fits(queue[0].bytes)) {
        const next = queue.shift()!;
        waitingBytes -= next.bytes;
        next.admit();
      }
    };
  }

  const tryEnter = (size: number) => queue.length === 0 && fits(size) ? start(size) : undefined;

  return {
    tryEnter,
    enter(size, abandoned) {
      const release = tryEnter(size);
      if (release !== undefined) return Promise.resolve({ admitted: true, release });
      if (queue.length > 0 && waitingBytes + size > budget.bytesWaiting) {
        return Promise.resolve({ admitted: false, reason: "overloaded" });
      }
      return new Promise<Admission>((resolve) => {
        const waiter: Waiter = {
          bytes: size,
          admit: () => resolve({ admitted: true, release: start(size) }),
        };
        queue.push(waiter);
        waitingBytes += size;
        abandoned.then(() => {
          const index = queue.indexOf(waiter);
          if (index === -1) return;
          queue.splice(index, 1);
          waitingBytes -= size;
          resolve({ admitted: false, reason: "abandoned" });
        });
      });
    },
    load: () => ({ inProgress, bytes, waiting: queue.length, waitingBytes }),
  };
}
