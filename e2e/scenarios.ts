/**
 * The end-to-end scenarios. Each VM of a scenario is created from its
 * deploy/test manifest in the run's namespace; the checks then look at the
 * virt-launcher pod, ask the metadata service from the compute container and
 * from inside the guest, and check tokens with the API server.
 */

import {
  KUBEVIRT,
  METADATA_ADDRESS,
  NOCLOUD_SERIAL,
  OPENSTACK_ASSET_TAG,
} from "../services/shared/contract.ts";
import { ANNOTATIONS } from "../services/shared/contract.ts";
import { type Cluster, execIn, getVm, getVmi, patchVm, reviewToken } from "./cluster.ts";
import { type ExpectedIdentity, identityProblems } from "./checks.ts";
import { sidecarProblems } from "../testing/sidecar_container.ts";
import { pointer } from "../services/webhook/json_patch.ts";
import { type GuestConsole, openConsole } from "./console.ts";
import { decodeJwt, serviceAccountClaims, tokenFromBody } from "./jwt.ts";
import type { KubeObject } from "../testing/manifests.ts";
import type { E2eOptions, Scenario } from "./options.ts";
import { done, pollUntil, waiting } from "./poll.ts";
import { CURL_STATUS_FLAGS, type HttpAnswer, parseCurlOutput } from "./transcript.ts";

/** Which deploy/test files each scenario needs (created once per run, shared). */
export const SCENARIO_FILES: Record<Scenario, string[]> = {
  masquerade: ["vm-cirros-masquerade.yaml"],
  bridge: ["vm-cirros-bridge.yaml"],
  isolation: ["vm-cirros-masquerade.yaml", "vm-cirros-bridge.yaml"],
  "user-data-secret": ["vm-cirros-user-data-secret.yaml"],
  "no-dhcp": ["net-attach-def-no-dhcp.yaml", "vm-cirros-no-dhcp.yaml"],
  "cloud-init": ["vm-ubuntu-cloud-init.yaml"],
  "opt-in-later": ["vm-cirros-opt-in-later.yaml"],
  openstack: ["vm-ubuntu-openstack.yaml"],
};

const CIRROS = { user: "cirros", password: "gocubsgo" };
const UBUNTU = { user: "ubuntu", password: "imds-test" };

export interface RunContext {
  cluster: Cluster;
  options: E2eOptions;
  namespace: string;
  /** The objects created for this run, by file name. */
  manifests: Map<string, KubeObject[]>;
  log(message: string): void;
}

export type Check = (run: RunContext) => Promise<void>;

function fail(problems: string[], what: string): void {
  if (problems.length > 0) throw new Error(`${what}:\n  - ${problems.join("\n  - ")}`);
}

function vmFrom(run: RunContext, file: string): KubeObject {
  const vm = run.manifests.get(file)?.find((o) => o.kind === "VirtualMachine");
  if (!vm) throw new Error(`${file} holds no VirtualMachine`);
  return vm;
}

function expectedIdentity(run: RunContext, vm: KubeObject): ExpectedIdentity {
  // deno-lint-ignore no-explicit-any
  const volumes: any[] = (vm.spec as any).template.spec.volumes ?? [];
  const account = volumes.find((v) => v.serviceAccount)?.serviceAccount.serviceAccountName;
  return {
    namespace: run.namespace,
    vmName: vm.metadata.name,
    serviceAccountName: account ?? "default",
  };
}

interface Launcher {
  namespace: string;
  name: string;
  // deno-lint-ignore no-explicit-any
  pod: any;
  // deno-lint-ignore no-explicit-any
  vmi: any;
}

/** Waits until the VM's VMI is Ready and returns it with its one running virt-launcher pod. */
export async function waitForVm(run: RunContext, vmName: string): Promise<Launcher> {
  const { cluster, namespace } = run;
  const vmi = await pollUntil(`VMI ${namespace}/${vmName} to be Running and Ready`, async () => {
    let vmi;
    try {
      vmi = await getVmi(cluster, namespace, vmName);
    } catch {
      return waiting("no VMI yet");
    }
    const ready = (vmi.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
    if (vmi.status?.phase === "Running" && ready?.status === "True") return done(vmi);
    return waiting(`phase ${vmi.status?.phase}, Ready ${ready?.status} ${ready?.message ?? ""}`);
  }, { timeoutMs: run.options.bootTimeoutSeconds * 1000, intervalMs: 5000 });
  const pods = await cluster.core.listNamespacedPod({
    namespace,
    labelSelector: `${KUBEVIRT.createdByLabel}=${vmi.metadata.uid}`,
  });
  const running = pods.items.filter((p) => p.status?.phase === "Running");
  if (running.length !== 1) {
    throw new Error(
      `expected one running virt-launcher pod for ${vmName}, found ${running.length}`,
    );
  }
  return { namespace, name: running[0].metadata!.name!, pod: running[0], vmi };
}

/** curl from the compute container, which shares the pod's network namespace. */
async function curlFromCompute(
  run: RunContext,
  launcher: Launcher,
  path: string,
  withHeader: boolean,
): Promise<HttpAnswer> {
  const result = await execIn(run.cluster, { ...launcher, container: "compute" }, [
    "curl",
    "-sS",
    "-m",
    "10",
    ...CURL_STATUS_FLAGS,
    ...(withHeader ? ["-H", "Metadata: true"] : []),
    `http://${METADATA_ADDRESS}${path}`,
  ]);
  if (result.exitCode !== 0) {
    throw new Error(`curl ${path} in compute exited ${result.exitCode}: ${result.stderr.trim()}`);
  }
  return parseCurlOutput(result.stdout);
}

async function checkToken(
  run: RunContext,
  body: string,
  expected: ExpectedIdentity,
  where: string,
) {
  const token = tokenFromBody(body);
  const claims = serviceAccountClaims(decodeJwt(token).payload);
  fail(
    [
      ...(claims.namespace !== expected.namespace
        ? [`token namespace ${claims.namespace}, expected ${expected.namespace}`]
        : []),
      ...(claims.serviceAccount !== expected.serviceAccountName
        ? [`token account ${claims.serviceAccount}, expected ${expected.serviceAccountName}`]
        : []),
    ],
    `token from ${where}`,
  );
  const user = await reviewToken(run.cluster, token);
  const wanted = `system:serviceaccount:${expected.namespace}:${expected.serviceAccountName}`;
  if (user !== wanted) throw new Error(`TokenReview says ${user}, expected ${wanted} (${where})`);
  run.log(`    token from ${where}: accepted by TokenReview as ${user}`);
}

/** Pod layout, then identity / token / missing header from the compute container. */
async function checkFromCompute(run: RunContext, launcher: Launcher, expected: ExpectedIdentity) {
  fail(sidecarProblems(launcher.pod), `sidecar in pod ${launcher.name}`);
  run.log(`    pod ${launcher.name}: one imds-server sidecar with the expected privileges`);
  const identity = await pollUntil("the metadata service to answer in the pod", async () => {
    const answer = await curlFromCompute(run, launcher, "/v1/identity", true);
    return answer.status === 200 ? done(answer) : waiting(`${answer.status} ${answer.body}`);
  }, { timeoutMs: 120_000, intervalMs: 3000 });
  fail(identityProblems(identity.body, expected), "identity from the compute container");
  const bare = await curlFromCompute(run, launcher, "/v1/identity", false);
  if (bare.status !== 400) {
    throw new Error(`/v1/identity without the Metadata header answered ${bare.status}, not 400`);
  }
  const token = await curlFromCompute(run, launcher, "/v1/token", true);
  if (token.status !== 200) throw new Error(`/v1/token answered ${token.status}: ${token.body}`);
  await checkToken(run, token.body, expected, "the compute container");
  run.log(`    compute container: identity ${identity.body}; no header → 400`);
}

const guestCurl = (path: string, header: boolean) =>
  `curl -s -m 10 -w '\\n%{http_code}' ${
    header ? "-H 'Metadata: true' " : ""
  }http://${METADATA_ADDRESS}${path}`;

async function guestHttp(
  guest: GuestConsole,
  path: string,
  header: boolean,
): Promise<HttpAnswer> {
  const { output, exitCode } = await guest.run(guestCurl(path, header));
  if (exitCode !== 0) throw new Error(`curl ${path} in the guest exited ${exitCode}: ${output}`);
  return parseCurlOutput(output);
}

/**
 * Logs in on `vmName`'s serial console and runs `session` there; a failure carries the
 * console's last output, and the console is closed either way.
 */
async function inGuestConsole<T>(
  run: RunContext,
  vmName: string,
  credentials: { user: string; password: string },
  session: (guest: GuestConsole) => Promise<T>,
): Promise<T> {
  const guest = openConsole(run.options.virtctl, run.cluster.context, run.namespace, vmName);
  try {
    await guest.login(
      credentials.user,
      credentials.password,
      run.options.bootTimeoutSeconds * 1000,
    );
    return await session(guest);
  } catch (error) {
    const tail = guest.transcript().slice(-1500);
    throw new Error(`${(error as Error).message}\n--- console of ${vmName} (end) ---\n${tail}`);
  } finally {
    await guest.close();
  }
}

/** Identity, missing header and token from inside the guest, over its serial console. */
async function checkFromGuest(
  run: RunContext,
  vmName: string,
  expected: ExpectedIdentity,
  credentials: { user: string; password: string },
  steps: {
    /** Commands run (and required to succeed) before asking the service. */
    prepare?: string[];
    /** More checks in the same console session, after the service answered. */
    inspect?: (guest: GuestConsole) => Promise<void>;
  } = {},
): Promise<string> {
  return await inGuestConsole(run, vmName, credentials, async (guest) => {
    for (const command of steps.prepare ?? []) {
      const { output, exitCode } = await guest.run(command);
      if (exitCode !== 0) {
        throw new Error(`"${command}" in the guest exited ${exitCode}: ${output}`);
      }
    }
    const identity = await pollUntil("the metadata service to answer the guest", async () => {
      const answer = await guestHttp(guest, "/v1/identity", true);
      return answer.status === 200 ? done(answer) : waiting(`${answer.status} ${answer.body}`);
    }, { timeoutMs: 120_000, intervalMs: 3000 });
    fail(identityProblems(identity.body, expected), `identity seen by the guest of ${vmName}`);
    const bare = await guestHttp(guest, "/v1/identity", false);
    if (bare.status !== 400) {
      throw new Error(`guest: /v1/identity without the header answered ${bare.status}, not 400`);
    }
    const token = await guestHttp(guest, "/v1/token", true);
    if (token.status !== 200) throw new Error(`guest: /v1/token answered ${token.status}`);
    await checkToken(run, token.body, expected, `the guest of ${vmName}`);
    run.log(`    guest ${vmName}: identity ${identity.body}; no header → 400`);
    await steps.inspect?.(guest);
    return identity.body;
  });
}

async function podNetworkVm(run: RunContext, file: string): Promise<string> {
  const vm = vmFrom(run, file);
  const expected = expectedIdentity(run, vm);
  const launcher = await waitForVm(run, vm.metadata.name);
  await checkFromCompute(run, launcher, expected);
  return await checkFromGuest(run, vm.metadata.name, expected, CIRROS);
}

export const SCENARIO_CHECKS: Record<Scenario, Check> = {
  openstack: checkOpenStackGuest,
  masquerade: async (run) => {
    await podNetworkVm(run, "vm-cirros-masquerade.yaml");
  },

  bridge: async (run) => {
    await podNetworkVm(run, "vm-cirros-bridge.yaml");
  },

  isolation: async (run) => {
    // Two VMs in one namespace, each with its own service account: each sees only itself.
    const files = ["vm-cirros-masquerade.yaml", "vm-cirros-bridge.yaml"];
    const seen: string[] = [];
    for (const file of files) {
      const vm = vmFrom(run, file);
      const launcher = await waitForVm(run, vm.metadata.name);
      const answer = await curlFromCompute(run, launcher, "/v1/identity", true);
      fail(identityProblems(answer.body, expectedIdentity(run, vm)), `identity of ${file}`);
      const token = await curlFromCompute(run, launcher, "/v1/token", true);
      await checkToken(run, token.body, expectedIdentity(run, vm), `pod of ${vm.metadata.name}`);
      seen.push(answer.body);
    }
    if (seen[0] === seen[1]) throw new Error(`both VMs got the same identity: ${seen[0]}`);
  },

  "user-data-secret": async (run) => {
    const file = "vm-cirros-user-data-secret.yaml";
    const vm = vmFrom(run, file);
    const launcher = await waitForVm(run, vm.metadata.name);
    fail(sidecarProblems(launcher.pod), `sidecar in pod ${launcher.name}`);
    // deno-lint-ignore no-explicit-any
    const annotations = (vm.spec as any).template.metadata.annotations;
    const secret = run.manifests.get(file)!.find((o) =>
      o.kind === "Secret" && o.metadata.name === annotations[ANNOTATIONS.userDataSecret]
    )!;
    const expected = Object.values(secret.stringData as Record<string, string>)[0];
    const answer = await pollUntil("user-data from the Secret", async () => {
      const answer = await curlFromCompute(run, launcher, "/v1/user-data", false);
      return answer.status === 200 ? done(answer) : waiting(`${answer.status} ${answer.body}`);
    }, { timeoutMs: 120_000, intervalMs: 3000 });
    if (answer.body.trimEnd() !== expected.trimEnd()) {
      throw new Error(`/v1/user-data is ${JSON.stringify(answer.body)}, expected the Secret's`);
    }
    run.log(`    /v1/user-data serves Secret ${secret.metadata.name}`);
  },

  "no-dhcp": async (run) => {
    const vm = vmFrom(run, "vm-cirros-no-dhcp.yaml");
    const expected = expectedIdentity(run, vm);
    const launcher = await waitForVm(run, vm.metadata.name);
    fail(sidecarProblems(launcher.pod), `sidecar in pod ${launcher.name}`);
    // No DHCP: the guest gives itself a link-local address; the sidecar must answer ARP.
    await checkFromGuest(run, vm.metadata.name, expected, CIRROS, {
      prepare: [
        "sudo ip addr add 169.254.100.100/16 dev eth0",
        "sudo ip link set eth0 up",
        // The only IPv4 address is the link-local one: no DHCP lease, no gateway.
        "! ip -4 addr show dev eth0 | grep inet | grep -v 169.254.100.100",
      ],
      inspect: async (guest) => {
        const { output } = await guest.run(`ip neigh show ${METADATA_ADDRESS}`);
        if (!/lladdr ([0-9a-f]{2}:){5}[0-9a-f]{2}/.test(output)) {
          throw new Error(`the guest has no ARP entry for ${METADATA_ADDRESS}: ${output}`);
        }
        run.log(`    guest ARP entry: ${output.trim()}`);
      },
    });
  },

  "cloud-init": async (run) => {
    const vm = vmFrom(run, "vm-ubuntu-cloud-init.yaml");
    const expected = expectedIdentity(run, vm);
    const launcher = await waitForVm(run, vm.metadata.name);
    const serial = launcher.vmi.spec?.domain?.firmware?.serial;
    if (serial !== NOCLOUD_SERIAL) {
      throw new Error(`the VM webhook did not set the DMI serial: ${JSON.stringify(serial)}`);
    }
    await checkFromCompute(run, launcher, expected);
    const userData = await curlFromCompute(run, launcher, "/v1/user-data", false);
    // deno-lint-ignore no-explicit-any
    const annotation: string = (vm.spec as any).template.metadata.annotations[ANNOTATIONS.userData];
    if (userData.status !== 200 || userData.body.trimEnd() !== annotation.trimEnd()) {
      throw new Error(`/v1/user-data answered ${userData.status}: ${userData.body}`);
    }
    // Logging in with the password the user-data set proves cloud-init applied it.
    await inGuestConsole(run, vm.metadata.name, UBUNTU, async (guest) => {
      const marker = await guest.run("cat /var/lib/imds-test/marker");
      if (marker.exitCode !== 0 || !marker.output.includes("user-data applied by cloud-init")) {
        throw new Error(`the user-data's marker file is missing: ${marker.output}`);
      }
      const source = await guest.run("sudo cloud-init query v1.platform 2>/dev/null || true");
      run.log(`    guest: marker file present; cloud-init platform ${source.output.trim()}`);
    });
  },

  "opt-in-later": async (run) => {
    // A VM created without the opt-in (so with KubeVirt's own serial on KubeVirt 1.6.1+),
    // opted in by an update, then started: the update and the start both go through
    // the VM webhook, and the VM ends with the NoCloud serial and the sidecar.
    const vm = vmFrom(run, "vm-cirros-opt-in-later.yaml");
    const name = vm.metadata.name;
    const serialOf = (object: { spec?: { template?: { spec?: { domain?: unknown } } } }) =>
      (object.spec?.template?.spec?.domain as { firmware?: { serial?: string } } | undefined)
        ?.firmware?.serial;
    const before = serialOf(await getVm(run.cluster, run.namespace, name));
    run.log(`    created without the opt-in; serial ${JSON.stringify(before)}`);
    const annotations = (vm.spec as { template: { metadata: { annotations?: unknown } } })
      .template.metadata.annotations;
    const optIn = annotations === undefined
      ? {
        op: "add",
        path: "/spec/template/metadata/annotations",
        value: { [ANNOTATIONS.enabled]: "true" },
      }
      : {
        op: "add",
        path: pointer(["spec", "template", "metadata", "annotations", ANNOTATIONS.enabled]),
        value: "true",
      };
    const updated = await patchVm(run.cluster, run.namespace, name, [optIn]);
    if (serialOf(updated) !== NOCLOUD_SERIAL) {
      throw new Error(
        `after opting in, the VM's serial is ${
          JSON.stringify(serialOf(updated))
        }, not the NoCloud one`,
      );
    }
    run.log(`    opted in by an update: serial ${JSON.stringify(before)} → the NoCloud serial`);
    await patchVm(run.cluster, run.namespace, name, [
      { op: "replace", path: "/spec/runStrategy", value: "Always" },
    ]);
    const launcher = await waitForVm(run, name);
    const serial = launcher.vmi.spec?.domain?.firmware?.serial;
    if (serial !== NOCLOUD_SERIAL) {
      throw new Error(`the started VMI's serial is ${JSON.stringify(serial)}`);
    }
    await checkFromCompute(run, launcher, expectedIdentity(run, vm));
  },
};

/**
 * A Linux guest on the OpenStack flavour: the VM webhook set the chassis asset
 * tag and no NoCloud serial; the guest's cloud-init took the OpenStack
 * datasource, applied the user-data and installed the SSH key from the Secret.
 */
async function checkOpenStackGuest(run: RunContext): Promise<void> {
  const file = "vm-ubuntu-openstack.yaml";
  const vm = vmFrom(run, file);
  const launcher = await waitForVm(run, vm.metadata.name);
  const domain = launcher.vmi.spec?.domain;
  if (domain?.chassis?.asset !== OPENSTACK_ASSET_TAG) {
    throw new Error(`the VM webhook did not set the asset tag: ${JSON.stringify(domain?.chassis)}`);
  }
  if (domain?.firmware?.serial === NOCLOUD_SERIAL) {
    throw new Error("the VM webhook wrote the NoCloud serial on an OpenStack VM");
  }
  await checkFromCompute(run, launcher, expectedIdentity(run, vm));
  const secret = run.manifests.get(file)?.find((o) => o.kind === "Secret");
  const key = String((secret?.stringData as Record<string, string>).e2e).trim();
  const metadata = await curlFromCompute(run, launcher, "/openstack/latest/meta_data.json", false);
  if (metadata.status !== 200 || !metadata.body.includes(key.split(" ")[1])) {
    throw new Error(`meta_data.json lacks the SSH key (${metadata.status}): ${metadata.body}`);
  }
  await inGuestConsole(run, vm.metadata.name, UBUNTU, async (guest) => {
    const marker = await guest.run("cat /var/lib/imds-test/marker");
    if (marker.exitCode !== 0 || !marker.output.includes("OpenStack datasource")) {
      throw new Error(`the user-data's marker file is missing: ${marker.output}`);
    }
    const platform = await guest.run("sudo cloud-init query v1.platform");
    if (!platform.output.includes("openstack")) {
      throw new Error(`cloud-init's platform is not openstack: ${platform.output}`);
    }
    const keys = await guest.run("cat ~/.ssh/authorized_keys");
    if (!keys.output.includes(key.split(" ")[1])) {
      throw new Error(`the SSH key did not reach authorized_keys: ${keys.output}`);
    }
    run.log("    guest: OpenStack datasource, marker file and SSH key present");
  });
}
