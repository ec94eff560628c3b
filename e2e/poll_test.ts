import { assertEquals, assertRejects } from "../testing/assert.ts";
import { type Clock, done, pollUntil, waiting } from "./poll.ts";

/** A clock that advances only when the poller sleeps. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: (ms) => {
      slept.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
}

Deno.test("poll: returns the value once the check is done", async () => {
  const clock = fakeClock();
  let calls = 0;
  const value = await pollUntil("the VM", () => {
    calls++;
    return Promise.resolve(calls < 3 ? waiting<string>(`phase ${calls}`) : done("Running"));
  }, { timeoutMs: 10_000, intervalMs: 1000, clock });
  assertEquals(value, "Running");
  assertEquals(clock.slept, [1000, 1000]);
});

Deno.test("poll: the timeout says what was awaited and what was last seen", async () => {
  const clock = fakeClock();
  let calls = 0;
  await assertRejects(
    () =>
      pollUntil("VMI e2e/vm to be Ready", () => {
        calls++;
        return Promise.resolve(waiting(`phase Scheduling (${calls})`));
      }, { timeoutMs: 2500, intervalMs: 1000, clock }),
    /timed out after 3s \(4 checks\) waiting for VMI e2e\/vm to be Ready; last seen: phase Scheduling \(4\)/,
  );
  // The last sleep is cut to the deadline, never past it.
  assertEquals(clock.slept, [1000, 1000, 500]);
});

Deno.test("poll: errors from the check are retried and reported at the deadline", async () => {
  const clock = fakeClock();
  let calls = 0;
  const value = await pollUntil("pod", () => {
    calls++;
    if (calls === 1) throw new Error("connection reset");
    return Promise.resolve(done(calls));
  }, { timeoutMs: 5000, clock });
  assertEquals(value, 2);
  await assertRejects(
    () => pollUntil("pod", () => Promise.reject(new Error("503")), { timeoutMs: 1, clock }),
    /last seen: error: 503/,
  );
});

Deno.test("poll: an aborted signal stops the wait", async () => {
  const controller = new AbortController();
  controller.abort(new Error("run cancelled"));
  await assertRejects(
    () =>
      pollUntil("x", () => Promise.resolve(waiting("no")), {
        timeoutMs: 1000,
        clock: fakeClock(),
        signal: controller.signal,
      }),
    /run cancelled/,
  );
});
