import { assertEquals } from "../../../testing/assert.ts";
import { createRateLimiter } from "./rate_limit.ts";

Deno.test("a client gets its burst, then waits for the sustained rate", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 2, burst: 3 });
  assertEquals([0, 0, 0].map((t) => limiter.take("10.0.2.2", t)), [0, 0, 0]);
  assertEquals(limiter.take("10.0.2.2", 0), 1, "empty bucket: retry after 1 s");
  assertEquals(limiter.take("10.0.2.2", 499), 1, "half a token is not enough");
  assertEquals(limiter.take("10.0.2.2", 520), 0, "one token refilled after 0.5 s");
  assertEquals(limiter.take("10.0.2.2", 530), 1);
});

Deno.test("Retry-After covers a slow refill", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 0.1, burst: 1 });
  assertEquals(limiter.take("c", 0), 0);
  assertEquals(limiter.take("c", 1), 10);
});

Deno.test("clients have separate buckets", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 1, burst: 1 });
  assertEquals(limiter.take("10.0.2.2", 0), 0);
  assertEquals(limiter.take("10.0.2.2", 1), 1);
  assertEquals(limiter.take("169.254.1.9", 1), 0);
});

Deno.test("idle buckets are dropped and the number tracked is capped", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 10, burst: 10 }, 100);
  for (let i = 0; i < 1000; i++) limiter.take(`10.1.${i >> 8}.${i & 255}`, i / 1000);
  assertEquals(limiter.size() <= 100, true, `tracked ${limiter.size()} clients`);
  // A second later every bucket is full again, so all of them can go.
  limiter.take("10.9.9.9", 5000);
  assertEquals(limiter.size(), 1);
});

Deno.test("under pressure the least recently seen client is forgotten first", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 1, burst: 2 }, 2);
  limiter.take("a", 0);
  limiter.take("a", 0);
  assertEquals(limiter.take("a", 0), 1);
  limiter.take("b", 0);
  limiter.take("c", 0); // the table is full: "a" goes
  assertEquals(limiter.size(), 2);
  assertEquals(limiter.take("a", 0), 0, "a forgotten client starts from a full bucket");
  assertEquals(limiter.take("c", 0), 0, "c was kept");
  assertEquals(limiter.take("c", 0), 1, "and its bucket remembered");
});

Deno.test("a rate of 0 turns limiting off", () => {
  const limiter = createRateLimiter({ requestsPerSecond: 0, burst: 1 });
  for (let i = 0; i < 100; i++) assertEquals(limiter.take("c", 0), 0);
  assertEquals(limiter.size(), 0);
});
