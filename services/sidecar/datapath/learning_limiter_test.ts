import { assertEquals } from "../../../testing/assert.ts";
import {
  createLearningLimiter,
  FLOOD_QUIET_MS,
  FLOOD_REPORT_EVERY_MS,
  GUEST_LEARNING_RATE,
} from "./learning_limiter.ts";

const PORT = 7;
const address = (i: number) => `169.254.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`;

Deno.test("a burst of new addresses is learned, then one a second; a flood is dropped", () => {
  const limiter = createLearningLimiter({ perSecond: 1, burst: 4 });
  const allowed = Array.from({ length: 2000 }, (_, i) => limiter.allow(PORT, address(i), i));
  // 2 s of flood: the burst, plus the tokens that refilled meanwhile.
  assertEquals(allowed.filter(Boolean).length, 4 + 1);
  assertEquals(limiter.allow(PORT, "169.254.100.100", 1999), false, "the real guest waits…");
  assertEquals(limiter.allow(PORT, "169.254.100.100", 2000 + 1000), true, "…until it calms down");
});

Deno.test("each VM port has its own bucket", () => {
  const limiter = createLearningLimiter({ perSecond: 1, burst: 1 });
  assertEquals(limiter.allow(1, "169.254.0.1", 0), true);
  assertEquals(limiter.allow(1, "169.254.0.2", 0), false);
  assertEquals(limiter.allow(2, "169.254.0.3", 0), true);
});

Deno.test("a flood is reported once, with its counts, after it has been quiet", () => {
  const limiter = createLearningLimiter(GUEST_LEARNING_RATE);
  assertEquals(limiter.nextReportAt(), undefined);
  for (let i = 0; i < 2000; i++) limiter.allow(PORT, address(i), i);
  const lastDrop = 1999;
  assertEquals(limiter.nextReportAt(), lastDrop + FLOOD_QUIET_MS);
  assertEquals(limiter.reports(lastDrop + FLOOD_QUIET_MS - 1), []);
  const [report, ...more] = limiter.reports(lastDrop + FLOOD_QUIET_MS);
  assertEquals(more, []);
  assertEquals(report.port, PORT);
  assertEquals(report.ongoing, false);
  assertEquals(report.learned, 1, "one a second while it lasted");
  assertEquals(report.dropped, 2000 - GUEST_LEARNING_RATE.burst - report.learned);
  assertEquals(report.addresses, report.dropped);
  assertEquals(report.examples.length, 3);
  assertEquals([report.since, report.until], [GUEST_LEARNING_RATE.burst, lastDrop]);
  assertEquals(limiter.reports(lastDrop + 10 * FLOOD_QUIET_MS), [], "reported once");
  assertEquals(limiter.nextReportAt(), undefined);
});

Deno.test("a flood that goes on is reported once a minute, not once per frame", () => {
  const limiter = createLearningLimiter({ perSecond: 1, burst: 1 });
  const reports = [];
  const end = 3 * FLOOD_REPORT_EVERY_MS + 500;
  for (let now = 0; now < end; now += 10) {
    limiter.allow(PORT, address(now % 1000), now);
    reports.push(...limiter.reports(now));
  }
  assertEquals(reports.map((report) => report.ongoing), [true, true, true]);
  reports.push(...limiter.reports(end + FLOOD_QUIET_MS));
  assertEquals(reports.map((report) => report.ongoing), [true, true, true, false]);
  assertEquals(reports[1].since, reports[0].until);
});

Deno.test("unplugged ports are forgotten", () => {
  const limiter = createLearningLimiter({ perSecond: 1, burst: 1 });
  limiter.allow(1, "169.254.0.1", 0);
  limiter.allow(1, "169.254.0.2", 0);
  limiter.keepPorts([2]);
  assertEquals(limiter.nextReportAt(), undefined);
  assertEquals(limiter.allow(1, "169.254.0.3", 0), true, "a port plugged in again starts full");
});
