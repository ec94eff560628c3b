/**
 * `deno task bench`: runs each benchmark script in turn and prints its
 * output. Every script compares against a baseline measured in the same run,
 * because this machine's speed varies.
 */

const SCRIPTS = ["sidecar_http.ts", "sidecar_network.ts", "webhook_admission.ts"];

const here = new URL(".", import.meta.url).pathname;
let failed = 0;
/** The "goal: …" lines the scripts print, repeated together at the end. */
const goals: string[] = [];
for (const script of SCRIPTS) {
  const path = `${here}${script}`;
  console.log(`\n== ${script}`);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let pending = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    Deno.stdout.writeSync(new TextEncoder().encode(chunk));
    const lines = (pending + chunk).split("\n");
    pending = lines.pop() ?? "";
    goals.push(...lines.filter((line) => line.startsWith("goal: ")));
  }
  if (pending.startsWith("goal: ")) goals.push(pending);
  const { code } = await child.status;
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`== ${script}: ${code === 0 ? "done" : `FAILED (exit ${code})`} in ${seconds} s`);
  if (code !== 0) failed++;
}
console.log("\n== goals (each a ratio to its baseline measured in the same run)");
for (const goal of goals) console.log(goal.slice("goal: ".length));
Deno.exit(failed === 0 ? 0 : 1);
