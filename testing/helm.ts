/**
 * Runs the real `helm` binaries (v3 as `helm`, v4 as `helm4`) against the
 * chart and parses what they render. Renders are memoised and may be started
 * ahead of time, so a test suite can render every case concurrently.
 */
import { type KubeObject, parseManifests } from "./manifests.ts";

export const CHART_DIR: string = new URL("../chart", import.meta.url).pathname;
export const RELEASE = "imds";
export const NAMESPACE = "kubevirt-imds";

/** A Kubernetes object as helm rendered it (its fields read freely by the chart tests). */
// deno-lint-ignore no-explicit-any
export type K8sObject = KubeObject & { [field: string]: any };

/** Result of one helm invocation. */
export type HelmResult = { ok: boolean; stdout: string; stderr: string };

/** What `helm template` produced for one set of values. */
export type Rendered = {
  objects: K8sObject[];
  /** The object of this kind and name; throws naming what exists when absent. */
  get(kind: string, name: string): K8sObject;
  /** All objects of a kind. */
  ofKind(kind: string): K8sObject[];
};

/** The helm binaries the suite uses: v3 is required by CI, v4 checked where present. */
export type HelmBinary = "helm" | "helm4";

const available = new Map<HelmBinary, Promise<boolean>>();

/** Whether `binary` runs here. */
export function helmAvailable(binary: HelmBinary): Promise<boolean> {
  let found = available.get(binary);
  if (!found) {
    found = (async () => {
      try {
        const command = new Deno.Command(binary, {
          args: ["version", "--short"],
          stdout: "null",
          stderr: "null",
        });
        return (await command.output()).success;
      } catch {
        return false; // not on PATH
      }
    })();
    available.set(binary, found);
  }
  return found;
}

/**
 * Test options for a test that needs `binary`: ignored with a message when it
 * is missing, except under CI=true, where the test runs (and fails) anyway.
 */
export async function needsHelm(binary: HelmBinary): Promise<{ ignore: boolean }> {
  if (await helmAvailable(binary)) return { ignore: false };
  if (Deno.env.get("CI") === "true") return { ignore: false };
  console.warn(
    `skipping chart tests that need '${binary}': it is not on PATH (CI=true makes them run)`,
  );
  return { ignore: true };
}

/** Runs helm with `args`, at most a few at a time (two cores). */
export function runHelm(binary: HelmBinary, args: string[]): Promise<HelmResult> {
  return limit(async () => {
    const out = await new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" }).output();
    const decoder = new TextDecoder();
    return {
      ok: out.success,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  });
}

/** Values for one render: written to a file and passed with `-f`. */
export type Values = Record<string, unknown>;

const renders = new Map<string, Promise<HelmResult>>();

/** `helm template` of the chart with `values` and extra flags (memoised). */
export function template(
  binary: HelmBinary,
  values: Values = {},
  extraArgs: string[] = [],
): Promise<HelmResult> {
  const key = `${binary}\u0000${JSON.stringify(values)}\u0000${extraArgs.join("\u0000")}`;
  let result = renders.get(key);
  if (!result) {
    result = (async () => {
      const file = await Deno.makeTempFile({ prefix: "imds-chart-values-", suffix: ".yaml" });
      try {
        await Deno.writeTextFile(file, JSON.stringify(values));
        return await runHelm(binary, [
          "template",
          RELEASE,
          CHART_DIR,
          "--namespace",
          NAMESPACE,
          "--values",
          file,
          ...extraArgs,
        ]);
      } finally {
        await Deno.remove(file);
      }
    })();
    // Renders may be started before any test awaits them.
    result.catch(() => {});
    renders.set(key, result);
  }
  return result;
}

/** `helm template` that must succeed; returns the parsed objects. */
export async function render(binary: HelmBinary, values: Values = {}): Promise<Rendered> {
  const result = await template(binary, values);
  if (!result.ok) {
    throw new Error(`helm template failed for ${JSON.stringify(values)}:\n${result.stderr}`);
  }
  return parseRendered(result.stdout);
}

/** Parses helm's multi-document output into objects (empty documents dropped). */
export function parseRendered(text: string): Rendered {
  const objects: K8sObject[] = parseManifests(text, "rendered YAML");
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  return {
    objects,
    ofKind,
    get(kind, name) {
      const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
      if (!found) {
        const present = objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(", ");
        throw new Error(`no ${kind}/${name} rendered; present: ${present}`);
      }
      return found;
    },
  };
}

const MAX_PARALLEL = 4;
let running = 0;
const waiting: (() => void)[] = [];

async function limit<T>(job: () => Promise<T>): Promise<T> {
  if (running >= MAX_PARALLEL) {
    await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over
  } else {
    running++;
  }
  try {
    return await job();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}
