import { assertEquals, assertThrows } from "./assert.ts";
import { denoRunTask, parseDenoRun } from "./deno_tasks.ts";

Deno.test("a deno run task splits into the flags before the script and the script", () => {
  assertEquals(parseDenoRun("deno run --no-config --v8-flags=--a,--b -A x/main.ts serve"), {
    flags: ["--no-config", "--v8-flags=--a,--b", "-A"],
    script: "x/main.ts",
  });
});

Deno.test("a task that is not a plain deno run is refused", () => {
  assertThrows(() => parseDenoRun("deno test -A"), /not a deno run/);
  assertThrows(() => parseDenoRun(`deno run "--v8-flags=a b" x.ts`), /quoting/);
  assertThrows(() => parseDenoRun("deno run -A"), /names no script/);
});

Deno.test("the sidecar task runs the sidecar's entry point with the image's V8 flags", () => {
  const task = denoRunTask("sidecar", "services/sidecar/main.ts");
  assertEquals(task.flags.some((flag) => flag.startsWith("--v8-flags=")), true);
  assertThrows(() => denoRunTask("sidecar", "other.ts"), /not other.ts/);
  assertThrows(() => denoRunTask("no-such-task"), /no task/);
});
