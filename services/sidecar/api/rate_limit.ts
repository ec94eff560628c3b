/**
 * Per-client token buckets. Memory stays bounded: a bucket that has refilled
 * completely is the same as no bucket, so idle ones are dropped, and the
 * number of clients tracked at once is capped.
 */

import type { RateLimitConfig } from "../config.ts";

export interface RateLimiter {
  /** Takes one request from `client`'s bucket; returns 0 if allowed, else seconds to wait. */
  take(client: string, now?: number): number;
  /** Clients currently tracked. */
  size(): number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

export const MAX_TRACKED_CLIENTS = 4096;

export function createRateLimiter(
  config: RateLimitConfig,
  maxClients = MAX_TRACKED_CLIENTS,
): RateLimiter {
  const { requestsPerSecond: rate, burst } = config;
  if (rate <= 0) return { take: () => 0, size: () => 0 };

  const buckets = new Map<string, Bucket>();
  /** Milliseconds after which an untouched bucket is full again. */
  const refillMs = (burst / rate) * 1000;
  let nextSweep = 0;

  const sweep = (now: number): void => {
    for (const [client, bucket] of buckets) {
      if (now - bucket.updated >= refillMs) buckets.delete(client);
    }
    // Still too many busy clients: forget the least recently seen ones.
    for (const client of buckets.keys()) {
      if (buckets.size < maxClients) break;
      buckets.delete(client);
    }
    nextSweep = now + Math.max(refillMs, 1000);
  };

  return {
    take(client, now = performance.now()) {
      if (now >= nextSweep) sweep(now);
      let bucket = buckets.get(client);
      if (bucket === undefined) {
        if (buckets.size >= maxClients) sweep(now);
        bucket = { tokens: burst, updated: now };
      } else {
        buckets.delete(client); // re-inserted below: the Map stays in least-recent-first order
        bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updated) / 1000) * rate);
        bucket.updated = now;
      }
      buckets.set(client, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
    },
    size: () => buckets.size,
  };
}
