import { assert, assertEquals } from "../../testing/assert.ts";
import { repeat, sleep } from "./sleep.ts";

Deno.test("repeat calls its tick again and again until stopped, then never again", async () => {
  let ticks = 0;
  let reached: () => void;
  const threeTicks = new Promise<void>((resolve) => reached = resolve);
  const repeating = repeat(5, () => {
    ticks++;
    if (ticks === 3) reached();
  });
  await threeTicks;
  repeating.stop();
  const atStop = ticks;
  await sleep(30);
  assertEquals(ticks, atStop);
  assert(atStop >= 3);
});
