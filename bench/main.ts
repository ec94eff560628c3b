/**
 * `deno task bench`: runs each benchmark script in turn and prints its
 * output. Every script compares against a baseline measured in the same run,
 * because this machine's speed varies.
 */

const SCRIPTS = ["sidecar_http.ts", "sidecar_network.ts", "webhook_admission.ts"];

const here = new URL(".", import.meta.url).pathname;
let failed = 0;
for (const script of SCRIPTS) {
  const path = `${here}${script}`;
  console.log(`\n== ${script}`);
  const started = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`== ${script}: ${code === 0 ? "done" : `FAILED (exit ${code})`} in ${seconds} s`);
  if (code !== 0) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
