import { assert, assertEquals } from "../../testing/assert.ts";
import { buildSidecar, SIDECAR_BUNDLE } from "./bundle.ts";
import { arpWorkerUrl } from "./datapath/arp_worker_url.ts";

/** The modules `main.js` loads before its first line runs: its static imports, transitively. */
function staticClosure(dir: string, entry: string): Map<string, string> {
  const sources = new Map<string, string>();
  const pending = [entry];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (sources.has(name)) continue;
    const source = Deno.readTextFileSync(`${dir}/${name}`);
    sources.set(name, source);
    // Static imports only: `import … from "x"` and `import "x"`, not `import("x")`.
    for (const match of source.matchAll(/\bimport\s*(?:[^"'();]*?\bfrom\s*)?["']([^"']+)["']/g)) {
      if (match[1].startsWith("./")) pending.push(match[1].slice(2));
      else sources.set(match[1], "");
    }
  }
  return sources;
}

Deno.test("the bundle: serve loads no npm package or Node.js module, run finds its ARP worker", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imds-bundle-test-" });
  try {
    const entry = await buildSidecar(dir);
    assertEquals(entry, `${dir}/${SIDECAR_BUNDLE.main}`);
    const loaded = [...staticClosure(dir, SIDECAR_BUNDLE.main).keys()];
    // A bundled CommonJS shim imports node:module, which loads Deno's Node.js layer at start-up.
    assertEquals(loaded.filter((name) => /^(node|npm):/.test(name)), []);
    assert(loaded.length < 10, `serve loads ${loaded.length} modules: ${loaded.join(", ")}`);
    // The network code is split off: `run` loads it, `serve` does not.
    const files = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    const run = files.find((name) => name.startsWith("run-"));
    assert(run !== undefined && !loaded.includes(run), `run's chunk: ${files.join(", ")}`);
    // Whichever chunk holds arp_responder's code, the worker's module is beside it.
    for (const name of files) {
      const worker = arpWorkerUrl(new URL(name, `file://${dir}/`).href);
      assertEquals(Deno.statSync(worker).isFile, true, `${worker.pathname} from ${name}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
