/**
 * Command-line options of the end-to-end suite, and the rule that picks the
 * cluster: the kube context must be named explicitly (flag or environment),
 * never taken from the kubeconfig's current context, because other clusters
 * may be current on the same machine at any time.
 */

import type { Env } from "../services/shared/settings.ts";

export interface E2eOptions {
  /** The kube context every API call and every virtctl call uses. */
  context: string;
  /** Where the context name came from, for the start-up message. */
  contextSource: string;
  /** Path to the virtctl binary (serial consoles). */
  virtctl: string;
  /** How long one VM may take to boot and answer, in seconds. */
  bootTimeoutSeconds: number;
  /** Namespace the chart is installed in (checked before the run starts). */
  imdsNamespace: string;
  /** Keep the run's namespace after the run (for debugging). */
  keep: boolean;
  /** Scenarios to run; empty = all. */
  only: string[];
}

export const SCENARIOS = [
  "masquerade",
  "bridge",
  "isolation",
  "user-data-secret",
  "no-dhcp",
  "cloud-init",
  "opt-in-later",
  "openstack",
] as const;
export type Scenario = typeof SCENARIOS[number];

export const USAGE =
  `Usage: deno task e2e [--context NAME] [--virtctl PATH] [--boot-timeout SECONDS]
                     [--imds-namespace NS] [--only a,b] [--keep]

Runs the end-to-end suite against a cluster with KubeVirt, cert-manager, Multus and
the kubevirt-imds chart installed (see README, Development: \`task up\`).

The kube context must be named: --context NAME, or IMDS_E2E_CONTEXT=NAME, or
KIND_CLUSTER_NAME=NAME (meaning context kind-NAME). The kubeconfig's current
context is never used.

Scenarios: ${SCENARIOS.join(", ")}`;

/** A problem with how the suite was started or with the cluster it was pointed at. */
export interface SetupError extends Error {
  name: "SetupError";
}

export function setupError(message: string): SetupError {
  const error = new Error(message) as SetupError;
  error.name = "SetupError";
  return error;
}

export function isSetupError(error: unknown): error is SetupError {
  return error instanceof Error && error.name === "SetupError";
}

/** Picks the context name from the flag, then IMDS_E2E_CONTEXT, then KIND_CLUSTER_NAME. */
export function resolveContextName(
  flag: string | undefined,
  env: Env,
): { name: string; source: string } {
  const candidates: Array<[string | undefined, string, (v: string) => string]> = [
    [flag, "--context", (v) => v],
    [env("IMDS_E2E_CONTEXT"), "IMDS_E2E_CONTEXT", (v) => v],
    [env("KIND_CLUSTER_NAME"), "KIND_CLUSTER_NAME", (v) => `kind-${v}`],
  ];
  for (const [value, source, toContext] of candidates) {
    if (value === undefined) continue;
    const trimmed = value.trim();
    if (trimmed === "") {
      throw setupError(`${source} is set but empty: name the kube context to test against`);
    }
    return { name: toContext(trimmed), source };
  }
  throw setupError(
    "no kube context named: pass --context NAME, or set IMDS_E2E_CONTEXT=NAME or " +
      "KIND_CLUSTER_NAME=NAME (context kind-NAME); the current context is never used",
  );
}

/** Checks that the named context exists in the kubeconfig, listing the ones that do if not. */
export function checkContextExists(name: string, available: readonly string[]): void {
  if (available.includes(name)) return;
  const list = available.length === 0 ? "none" : available.join(", ");
  throw setupError(
    `kube context "${name}" is not in the kubeconfig (contexts there: ${list}); ` +
      "create the cluster with `task cluster` or name another context",
  );
}

function flagValue(args: string[], index: number, flag: string): [string, number] {
  const arg = args[index];
  const eq = arg.indexOf("=");
  if (eq >= 0) return [arg.slice(eq + 1), index];
  const next = args[index + 1];
  if (next === undefined || next.startsWith("--")) {
    throw setupError(`${flag} needs a value\n\n${USAGE}`);
  }
  return [next, index + 1];
}

export function parseE2eArgs(args: string[], env: Env): E2eOptions {
  let contextFlag: string | undefined;
  let virtctl = env("VIRTCTL") ?? "virtctl";
  let bootTimeoutSeconds = 900;
  let imdsNamespace = env("IMDS_NAMESPACE") ?? "kubevirt-imds";
  let keep = false;
  let only: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const flag = arg.split("=", 1)[0];
    let value: string;
    switch (flag) {
      case "--context":
        [contextFlag, i] = flagValue(args, i, flag);
        break;
      case "--virtctl":
        [virtctl, i] = flagValue(args, i, flag);
        break;
      case "--boot-timeout": {
        [value, i] = flagValue(args, i, flag);
        const seconds = Number(value);
        if (!Number.isInteger(seconds) || seconds < 30) {
          throw setupError(`--boot-timeout: expected whole seconds >= 30, got "${value}"`);
        }
        bootTimeoutSeconds = seconds;
        break;
      }
      case "--imds-namespace":
        [imdsNamespace, i] = flagValue(args, i, flag);
        break;
      case "--only": {
        [value, i] = flagValue(args, i, flag);
        only = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
        const unknown = only.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
        if (unknown.length > 0) {
          throw setupError(
            `--only: unknown scenario ${unknown.join(", ")} (known: ${SCENARIOS.join(", ")})`,
          );
        }
        break;
      }
      case "--keep":
        keep = true;
        break;
      case "--help":
      case "-h":
        throw setupError(USAGE);
      default:
        throw setupError(`unknown argument "${arg}"\n\n${USAGE}`);
    }
  }
  const context = resolveContextName(contextFlag, env);
  return {
    context: context.name,
    contextSource: context.source,
    virtctl,
    bootTimeoutSeconds,
    imdsNamespace,
    keep,
    only,
  };
}

/** The scenarios a run executes, in a fixed order. */
export function selectedScenarios(options: Pick<E2eOptions, "only">): Scenario[] {
  return SCENARIOS.filter((s) => options.only.length === 0 || options.only.includes(s));
}
