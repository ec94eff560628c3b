/**
 * The sidecar as its image runs it: the bundle services/sidecar/bundle.ts makes,
 * built once per process into a temporary directory and started with the
 * runtime flags of the deno.json `sidecar` task. Tests, the demo and the
 * benchmarks start the sidecar through this, never from its sources.
 */

import { buildSidecar } from "../services/sidecar/bundle.ts";
import { denoRunTask } from "./deno_tasks.ts";

let built: Promise<string> | undefined;

/** The bundle's entry module, built on first use and removed when the process ends. */
export function sidecarBundle(): Promise<string> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "imds-sidecar-bundle-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
    return await buildSidecar(dir);
  })();
  return built;
}

/** `deno run FLAGS BUNDLE`: the command before the subcommand (`serve`, `run`, `password`). */
export async function sidecarCommand(): Promise<string[]> {
  const { flags } = denoRunTask("sidecar", "services/sidecar/main.ts");
  return [Deno.execPath(), "run", ...flags, await sidecarBundle()];
}
