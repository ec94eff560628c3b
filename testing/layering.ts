/**
 * Which folder may import which: the rules behind the tree in docs/architecture.md, checked on
 * the real module graph (`deno info --json`, static, dynamic and type-only imports alike).
 *
 * Paths are relative to the repository root ("services/sidecar/kernel/libc.ts"); a module from
 * outside the repository keeps its specifier ("npm:yaml@2.9.1").
 */

/** One import: `from` imports `to`. */
export interface Edge {
  from: string;
  to: string;
}

export interface Violation {
  edge: Edge;
  /** The rule the edge breaks, worded for whoever added it. */
  rule: string;
}

const SIDECAR = "services/sidecar/";
const KERNEL = `${SIDECAR}kernel/`;
const DATAPATH = `${SIDECAR}datapath/`;
const HTTP = `${SIDECAR}http/`;
const API = `${SIDECAR}api/`;
const SHARED = "services/shared/";
const WEBHOOK = "services/webhook/";
/** What kernel/ may use outside itself: logging, which knows nothing about KubeVirt. */
const KERNEL_MAY_USE = ["services/shared/log.ts"];

/** Folders of tests, tools and delivery: they share helpers only through testing/. */
const SUPPORT_FOLDERS = ["testing/", "bench/", "e2e/", "tools/", "deploy/", "chart/tests/"];

const isTest = (path: string) => path.endsWith("_test.ts");
const isProduct = (path: string) => path.startsWith("services/") && !isTest(path);
const supportFolder = (path: string) => SUPPORT_FOLDERS.find((folder) => path.startsWith(folder));
const inRepository = (path: string) => !/^[a-z]+:/.test(path);

type Rule = (edge: Edge) => string | undefined;

const RULES: Rule[] = [
  ({ from, to }) =>
    from.startsWith(KERNEL) && !isTest(from) && !to.startsWith(KERNEL) &&
      !KERNEL_MAY_USE.includes(to)
      ? "kernel/ knows nothing about KubeVirt or the sidecar's other layers: it imports only " +
        "kernel/ and services/shared/log.ts (no datapath/, http/, sidecar top level, " +
        "contract.ts names or packages)"
      : undefined,
  ({ from, to }) =>
    from.startsWith(HTTP) && !isTest(from) && inRepository(to) && !to.startsWith(HTTP) &&
      !to.startsWith(SHARED)
      ? "http/ is HTTP/1.1 and connection handling, knowing nothing of the metadata API: it " +
        "imports only http/ and services/shared/ (no api/, datapath/, kernel/ or sidecar top level)"
      : undefined,
  ({ from, to }) =>
    from.startsWith(API) && !isTest(from) && (to.startsWith(DATAPATH) || to.startsWith(KERNEL))
      ? "api/ serves what the configuration and the mounted files hold and never reaches into " +
        "datapath/ or kernel/"
      : undefined,
  ({ from, to }) =>
    isProduct(from) && (supportFolder(to) !== undefined || isTest(to))
      ? "product code never imports tests, testing/, bench/, e2e/, tools/, deploy/ or chart/tests/"
      : undefined,
  ({ from, to }) =>
    (from.startsWith(SIDECAR) && to.startsWith(WEBHOOK)) ||
      (from.startsWith(WEBHOOK) && to.startsWith(SIDECAR))
      ? "the sidecar and the webhook share code only through services/shared/"
      : undefined,
  ({ from, to }) => {
    const source = supportFolder(from);
    const target = supportFolder(to);
    return source !== undefined && target !== undefined && source !== target &&
        target !== "testing/"
      ? "testing/, bench/, e2e/, tools/, deploy/ and chart/tests/ share helpers only " +
        "through testing/"
      : undefined;
  },
  ({ from, to }) =>
    isTest(to) && from !== to && inRepository(to)
      ? "nothing imports a test module (its tests would run twice)"
      : undefined,
];

/** Every edge that breaks a rule, once per rule it breaks. */
export function layeringViolations(edges: readonly Edge[]): Violation[] {
  return edges.flatMap((edge) =>
    RULES.flatMap((rule) => {
      const broken = rule(edge);
      return broken === undefined ? [] : [{ edge, rule: broken }];
    })
  );
}

/** `from → to: rule`, one line. */
export function formatViolation({ edge, rule }: Violation): string {
  return `${edge.from} → ${edge.to}: ${rule}`;
}

interface InfoDependency {
  code?: { specifier: string };
  type?: { specifier: string };
}

interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
  error?: string;
}

/**
 * The imports of `files` (paths relative to `root`) and of everything they load, from one
 * `deno info --json` over a generated module that imports them all, resolved with the
 * repository's deno.json. Throws when a module cannot be resolved.
 */
export async function moduleEdges(root: URL, files: readonly string[]): Promise<Edge[]> {
  const dir = await Deno.makeTempDir({ prefix: "imds-layering-" });
  try {
    const entry = `${dir}/entry.ts`;
    await Deno.writeTextFile(
      entry,
      files.map((file) => `import ${JSON.stringify(new URL(file, root).href)};\n`).join(""),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("deno.json", root).pathname, entry],
      cwd: root.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) {
      throw new Error(`deno info failed: ${new TextDecoder().decode(output.stderr)}`);
    }
    const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
    const broken = info.modules.filter((module) => module.error !== undefined);
    if (broken.length > 0) {
      throw new Error(`unresolvable modules: ${broken.map((m) => m.error).join("; ")}`);
    }
    const relative = (specifier: string) =>
      specifier.startsWith(root.href) ? specifier.slice(root.href.length) : specifier;
    const entryHref = new URL(`file://${entry}`).href;
    const edges: Edge[] = [];
    for (const module of info.modules) {
      if (module.specifier === entryHref || !module.specifier.startsWith(root.href)) continue;
      const from = relative(module.specifier);
      for (const dependency of module.dependencies ?? []) {
        const targets = new Set(
          [dependency.code?.specifier, dependency.type?.specifier].filter((s) => s !== undefined),
        );
        for (const target of targets) edges.push({ from, to: relative(target) });
      }
    }
    return edges;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every TypeScript module (not a .d.ts) under `folders` of `root`, relative to it, sorted. */
export async function typescriptFiles(root: URL, folders: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for await (const entry of Deno.readDir(new URL(folder, root))) {
      const path = `${folder}${entry.name}`;
      if (entry.isDirectory) await walk(`${path}/`);
      else if (entry.isFile && path.endsWith(".ts") && !path.endsWith(".d.ts")) found.push(path);
    }
  };
  for (const folder of folders) await walk(folder);
  return found.sort();
}

/** The folders whose modules the layering rules cover. */
export const LAYERED_FOLDERS = ["services/", ...SUPPORT_FOLDERS] as const;
