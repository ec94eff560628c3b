/**
 * kubevirt-imds end-to-end suite: `deno task e2e --context kind-<cluster>`.
 *
 * Creates the deploy/test VMs in a namespace of its own, checks the metadata
 * service from the virt-launcher pods and from inside the guests, deletes the
 * namespace and checks that nothing of the run is left. Stops at once, saying
 * what it needs, when started without a named context or against a cluster
 * that is unreachable or lacks KubeVirt, cert-manager, Multus or the chart.
 *
 * Exit status: 0 all scenarios passed, 1 some failed, 2 could not start.
 */

import { processEnv } from "../services/shared/settings.ts";
import { apiStatus, type Cluster, connect, createObjects, preflight } from "./cluster.ts";
import { type KubeObject, readManifest } from "../testing/manifests.ts";
import { forRun, RUN_LABEL } from "./manifests.ts";
import { isSetupError, parseE2eArgs, type Scenario, selectedScenarios } from "./options.ts";
import { done, pollUntil, waiting } from "./poll.ts";
import { type RunContext, SCENARIO_CHECKS, SCENARIO_FILES } from "./scenarios.ts";

function log(message: string): void {
  console.log(message);
}

async function createNamespace(cluster: Cluster, namespace: string, runId: string) {
  await cluster.core.createNamespace({
    body: { metadata: { name: namespace, labels: { [RUN_LABEL]: runId } } },
  });
}

/** Deletes the run's namespace and proves that nothing labelled with the run remains. */
async function cleanUp(cluster: Cluster, namespace: string, runId: string): Promise<void> {
  try {
    await cluster.core.deleteNamespace({ name: namespace, propagationPolicy: "Foreground" });
  } catch (error) {
    if (apiStatus(error) !== 404) throw error;
  }
  await pollUntil(`namespace ${namespace} to be gone`, async () => {
    try {
      const ns = await cluster.core.readNamespace({ name: namespace });
      return waiting(`namespace ${ns.status?.phase}`);
    } catch (error) {
      if (apiStatus(error) === 404) return done(undefined);
      throw error;
    }
  }, { timeoutMs: 600_000, intervalMs: 3000 });
  const selector = `${RUN_LABEL}=${runId}`;
  const pods = await cluster.core.listPodForAllNamespaces({ labelSelector: selector });
  const vmis = await cluster.custom.listClusterCustomObject({
    group: "kubevirt.io",
    version: "v1",
    plural: "virtualmachineinstances",
    labelSelector: selector,
  });
  const left = [
    ...pods.items.map((p) => `pod ${p.metadata?.namespace}/${p.metadata?.name}`),
    // deno-lint-ignore no-explicit-any
    ...(vmis.items as any[]).map((v) => `VMI ${v.metadata.namespace}/${v.metadata.name}`),
  ];
  if (left.length > 0) throw new Error(`left behind after cleanup: ${left.join(", ")}`);
}

async function main(): Promise<number> {
  let options;
  let cluster: Cluster;
  try {
    options = parseE2eArgs(Deno.args, processEnv);
    cluster = connect(options.context);
    const version = await preflight(cluster, options);
    log(
      `kubevirt-imds e2e against context ${cluster.context} (from ${options.contextSource}), ` +
        `${cluster.server}, Kubernetes ${version}`,
    );
  } catch (error) {
    if (!isSetupError(error)) throw error;
    console.error(`e2e: ${error.message}`);
    return 2;
  }

  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const namespace = `imds-e2e-${runId}`;
  const scenarios = selectedScenarios(options);
  const files = [...new Set(scenarios.flatMap((s) => SCENARIO_FILES[s]))];
  const manifests = new Map<string, KubeObject[]>();
  for (const file of files) manifests.set(file, forRun(await readManifest(file), namespace, runId));
  const run: RunContext = { cluster, options, namespace, manifests, log };

  const results: Array<{ scenario: Scenario; error?: Error }> = [];
  let cleanupError: Error | undefined;
  // Ctrl+C still removes what the run created (unless --keep).
  const interrupted = () => {
    log(`\ninterrupted${options.keep ? "" : `: deleting namespace ${namespace}`}`);
    const done = options.keep ? Promise.resolve() : cleanUp(cluster, namespace, runId);
    done.catch((e) => log(`FAIL cleanup: ${e.message}`)).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupted);
  try {
    await createNamespace(cluster, namespace, runId);
    log(`namespace ${namespace}: creating ${files.join(", ")}`);
    // Everything at once: the VMs boot in parallel while earlier scenarios run.
    for (const file of files) await createObjects(cluster, manifests.get(file)!);
    for (const scenario of scenarios) {
      log(`--- ${scenario}`);
      try {
        await SCENARIO_CHECKS[scenario](run);
        results.push({ scenario });
        log(`ok   ${scenario}`);
      } catch (error) {
        results.push({ scenario, error: error as Error });
        log(`FAIL ${scenario}: ${(error as Error).message}`);
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    if (options.keep) {
      log(`--keep: namespace ${namespace} is left for inspection`);
    } else {
      log(`--- cleanup: deleting namespace ${namespace}`);
      try {
        await cleanUp(cluster, namespace, runId);
        log("ok   cleanup: nothing of the run is left");
      } catch (error) {
        cleanupError = error as Error;
        log(`FAIL cleanup: ${cleanupError.message}`);
      }
    }
  }
  const failed = results.filter((r) => r.error).length + (cleanupError ? 1 : 0);
  const passed = results.length - results.filter((r) => r.error).length +
    (options.keep || cleanupError ? 0 : 1);
  log(`\n${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main());
}
