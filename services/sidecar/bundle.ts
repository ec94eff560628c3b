/**
 * Builds the sidecar's production artifact: its TypeScript modules bundled
 * into a few minified JavaScript files, which the image compiles into its
 * binary (Dockerfile.sidecar) and which the tests, the demo and the
 * benchmarks run with the image's runtime flags.
 *
 * Why a bundle: `serve` loads five modules instead of about 35, so its code
 * starts about 5 ms after the runtime (16 from the sources), it listens at
 * about 7 ms (23), and it holds about 1.3 MiB less private memory
 * (`deno task bench`, "sidecar, unbundled sources").
 * - `--code-splitting` keeps `run`'s network code, the OpenStack endpoints and
 *   `password` in their own files, loaded only by the subcommand or request
 *   that needs them, as the sources' dynamic imports do.
 * - npm packages stay `npm:` imports (resolved by the runtime, embedded by
 *   `deno compile`): bundled, their CommonJS shim would load Deno's Node.js
 *   compatibility layer at start-up (+20 ms, +3 MiB).
 * - The ARP responder's worker thread is a second, self-contained bundle
 *   beside the first (SIDECAR_BUNDLE.arpWorker), where the bundled
 *   arp_responder looks for it.
 *
 * Usage: deno run -A services/sidecar/bundle.ts OUTDIR
 */

import { ARP_WORKER_BUNDLED } from "./datapath/arp_worker_url.ts";

/** The modules bundled, relative to the repository root. */
export const SIDECAR_SOURCES = {
  main: "services/sidecar/main.ts",
  arpWorker: "services/sidecar/datapath/arp_worker.ts",
} as const;

/** The files in OUTDIR a runtime starts or loads by name. */
export const SIDECAR_BUNDLE = { main: "main.js", arpWorker: ARP_WORKER_BUNDLED } as const;

/** `deno bundle` flags shared by both bundles (the sidecar runs with --no-config). */
const BUNDLE_FLAGS = [
  "--quiet",
  "--no-config",
  "--platform",
  "deno",
  "--minify",
  "--external",
  "npm:*",
];

const ROOT = new URL("../../", import.meta.url).pathname;

async function bundle(args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", ...BUNDLE_FLAGS, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`deno bundle ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** Bundles the sidecar into `outdir` (created if missing); returns the path of its entry module. */
export async function buildSidecar(outdir: string): Promise<string> {
  if (!outdir.startsWith("/")) outdir = `${Deno.cwd()}/${outdir}`;
  await bundle(["--code-splitting", "--outdir", outdir, SIDECAR_SOURCES.main]);
  await bundle(["-o", `${outdir}/${SIDECAR_BUNDLE.arpWorker}`, SIDECAR_SOURCES.arpWorker]);
  return `${outdir}/${SIDECAR_BUNDLE.main}`;
}

if (import.meta.main) {
  const [outdir] = Deno.args;
  if (outdir === undefined || Deno.args.length !== 1) {
    console.error("usage: deno run -A services/sidecar/bundle.ts OUTDIR");
    Deno.exit(2);
  }
  console.log(await buildSidecar(outdir));
}
