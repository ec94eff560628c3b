/**
 * The suite's view of the cluster, through @kubernetes/client-node, always
 * bound to the one context the run was started with: loading the kubeconfig,
 * checking that the cluster has what the suite needs, creating objects,
 * reading VMIs and pods, exec into containers, TokenReview, cleanup.
 */

// @ts-types="./client_node.d.ts"
import * as k8s from "@kubernetes/client-node";
import { Writable } from "node:stream";
import { checkContextExists, setupError } from "./options.ts";
import type { KubeObject } from "../testing/manifests.ts";
import { exitCodeOf } from "./transcript.ts";

export interface Cluster {
  context: string;
  server: string;
  kubeConfig: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  auth: k8s.AuthenticationV1Api;
  custom: k8s.CustomObjectsApi;
  objects: k8s.KubernetesObjectApi;
}

/**
 * Loads the kubeconfig (KUBECONFIG or ~/.kube/config) and binds every client
 * to `context`. The file's current-context is neither used nor changed.
 */
export function connect(context: string): Cluster {
  const kubeConfig = new k8s.KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw setupError(`cannot read the kubeconfig: ${(error as Error).message}`);
  }
  checkContextExists(context, kubeConfig.getContexts().map((c) => c.name));
  kubeConfig.setCurrentContext(context);
  const server = kubeConfig.getCurrentCluster()?.server ?? "(no server)";
  return {
    context,
    server,
    kubeConfig,
    core: kubeConfig.makeApiClient(k8s.CoreV1Api),
    apps: kubeConfig.makeApiClient(k8s.AppsV1Api),
    auth: kubeConfig.makeApiClient(k8s.AuthenticationV1Api),
    custom: kubeConfig.makeApiClient(k8s.CustomObjectsApi),
    objects: k8s.KubernetesObjectApi.makeApiClient(kubeConfig),
  };
}

/** The HTTP status of a failed API call, if it was an API answer. */
export function apiStatus(error: unknown): number | undefined {
  return error instanceof k8s.ApiException ? error.code : undefined;
}

function describe(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    const body = error.body;
    let detail = "";
    try {
      const status = typeof body === "string" ? JSON.parse(body) : body;
      detail = [status?.reason, status?.message].filter(Boolean).join(": ");
    } catch {
      detail = String(body).slice(0, 200);
    }
    return `HTTP ${error.code}${detail ? ` ${detail}` : ""}`;
  }
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s (${what})`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const NEEDS =
  "The suite needs a running cluster with KubeVirt, cert-manager, Multus (bridge CNI plugin) " +
  "and the kubevirt-imds chart installed; `task up` creates one on kind " +
  "(KIND_CLUSTER_NAME=<name>, context kind-<name>).";

/** Stops the run at once, saying what is missing, unless the cluster is ready for it. */
export async function preflight(
  cluster: Cluster,
  options: { imdsNamespace: string; virtctl: string },
): Promise<string> {
  let version: string;
  try {
    const info = await withTimeout(
      cluster.kubeConfig.makeApiClient(k8s.VersionApi).getCode(),
      15_000,
      "GET /version",
    );
    version = info.gitVersion;
  } catch (error) {
    throw setupError(
      `cannot reach the Kubernetes API of context "${cluster.context}" at ${cluster.server} ` +
        `(${describe(error)}).\n${NEEDS}`,
    );
  }
  const missing: string[] = [];
  const crds = [
    ["kubevirt.io", "v1", "virtualmachines", "KubeVirt (`task kubevirt`)"],
    ["k8s.cni.cncf.io", "v1", "network-attachment-definitions", "Multus (`task multus`)"],
    ["cert-manager.io", "v1", "certificates", "cert-manager (`task cert-manager`)"],
  ];
  for (const [group, version, plural, what] of crds) {
    try {
      await cluster.custom.listClusterCustomObject({ group, version, plural, limit: 1 });
    } catch (error) {
      missing.push(`${what}: ${plural}.${group} is not served (${describe(error)})`);
    }
  }
  const webhook = `the kubevirt-imds webhook in namespace ${options.imdsNamespace} ` +
    "(`task deploy`, or --imds-namespace NS)";
  try {
    const deployments = await cluster.apps.listNamespacedDeployment({
      namespace: options.imdsNamespace,
    });
    const ready = deployments.items.filter((d) => (d.status?.readyReplicas ?? 0) > 0);
    if (ready.length === 0) {
      missing.push(`${webhook}: no ready Deployment`);
    }
  } catch (error) {
    missing.push(`${webhook}: ${describe(error)}`);
  }
  try {
    const out = await new Deno.Command(options.virtctl, {
      args: ["version", "--client"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) missing.push(`virtctl at ${options.virtctl} does not run`);
  } catch {
    missing.push(
      `virtctl: not found at "${options.virtctl}" (\`task virtctl\`, or --virtctl PATH)`,
    );
  }
  if (missing.length > 0) {
    throw setupError(
      `context "${cluster.context}" (${cluster.server}, Kubernetes ${version}) is missing:\n` +
        missing.map((m) => `  - ${m}`).join("\n") + `\n${NEEDS}`,
    );
  }
  return version;
}

export async function createObjects(cluster: Cluster, objects: KubeObject[]): Promise<void> {
  for (const object of objects) {
    try {
      await cluster.objects.create(object as k8s.KubernetesObject);
    } catch (error) {
      throw new Error(
        `creating ${object.kind} ${object.metadata.namespace}/${object.metadata.name}: ${
          describe(error)
        }`,
      );
    }
  }
}

// deno-lint-ignore no-explicit-any
export type Vmi = any;

export async function getVmi(cluster: Cluster, namespace: string, name: string): Promise<Vmi> {
  return await cluster.custom.getNamespacedCustomObject({
    group: "kubevirt.io",
    version: "v1",
    namespace,
    plural: "virtualmachineinstances",
    name,
  });
}

// deno-lint-ignore no-explicit-any
export type Vm = any;

const VIRTUAL_MACHINES = { group: "kubevirt.io", version: "v1", plural: "virtualmachines" };

export async function getVm(cluster: Cluster, namespace: string, name: string): Promise<Vm> {
  return await cluster.custom.getNamespacedCustomObject({ ...VIRTUAL_MACHINES, namespace, name });
}

/** Applies a JSON Patch to a VirtualMachine (through the admission webhooks, as any update). */
export async function patchVm(
  cluster: Cluster,
  namespace: string,
  name: string,
  patch: unknown[],
): Promise<Vm> {
  try {
    return await cluster.custom.patchNamespacedCustomObject({
      ...VIRTUAL_MACHINES,
      namespace,
      name,
      body: patch,
    });
  } catch (error) {
    throw new Error(`patching VirtualMachine ${namespace}/${name}: ${describe(error)}`);
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs `command` in a container and collects its output and exit code. */
export async function execIn(
  cluster: Cluster,
  pod: { namespace: string; name: string; container: string },
  command: string[],
  timeoutMs = 60_000,
): Promise<ExecResult> {
  const chunks = { stdout: [] as string[], stderr: [] as string[] };
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _encoding, callback) {
        into.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
        callback();
      },
    });
  let status: k8s.V1Status | undefined;
  const exec = new k8s.Exec(cluster.kubeConfig);
  const finished = new Promise<void>((resolve, reject) => {
    exec.exec(
      pod.namespace,
      pod.name,
      pod.container,
      command,
      sink(chunks.stdout),
      sink(chunks.stderr),
      null,
      false,
      (s) => {
        status = s;
      },
    ).then((socket) => {
      socket.on("close", () => resolve());
      socket.on("error", (e: Error) => reject(e));
    }, reject);
  });
  await withTimeout(finished, timeoutMs, `exec ${command.join(" ")} in ${pod.name}`);
  return {
    stdout: chunks.stdout.join(""),
    stderr: chunks.stderr.join(""),
    exitCode: exitCodeOf(status),
  };
}

/** Asks the API server whether `token` is valid; returns the user it authenticates. */
export async function reviewToken(cluster: Cluster, token: string): Promise<string> {
  const review = await cluster.auth.createTokenReview({
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
  });
  if (!review.status?.authenticated) {
    throw new Error(
      `TokenReview rejected the token: ${review.status?.error ?? "not authenticated"}`,
    );
  }
  return review.status.user?.username ?? "";
}
