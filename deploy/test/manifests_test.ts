/**
 * The test manifests are what users copy: each must be a valid KubeVirt /
 * Kubernetes object (no field the API would drop), opt in to the metadata
 * service, and hold together (disks ↔ volumes, interfaces ↔ networks,
 * referenced service accounts, Secrets and networks defined alongside).
 */

import {
  instanceOfV1VirtualMachine,
  type V1VirtualMachine,
  V1VirtualMachineFromJSON,
  V1VirtualMachineToJSON,
} from "@kubevirt-ui-ext/kubevirt-api/kubevirt";
import { parse as parseYaml } from "yaml";
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { ANNOTATIONS } from "../../services/shared/contract.ts";
import { DEFAULT_KEYS } from "../../services/webhook/opt_in.ts";
import { droppedFields, type KubeObject, readManifest } from "../../testing/manifests.ts";

/** The Secret key holding user-data when the annotation names no key, as the webhook reads it. */
const USER_DATA_SECRET_KEY = DEFAULT_KEYS.userData;

const FILES = [
  "vm-cirros-masquerade.yaml",
  "vm-cirros-bridge.yaml",
  "net-attach-def-no-dhcp.yaml",
  "vm-cirros-no-dhcp.yaml",
  "vm-ubuntu-cloud-init.yaml",
  "vm-cirros-user-data-secret.yaml",
  "vm-cirros-opt-in-later.yaml",
  "vm-windows-cloudbase-init.yaml",
  "vm-ubuntu-openstack.yaml",
];

/** The VM that starts without the opt-in; the e2e suite opts it in after creation. */
const OPTS_IN_LATER = "vm-cirros-opt-in-later.yaml";

const manifests = new Map<string, KubeObject[]>();
for (const file of FILES) manifests.set(file, await readManifest(file));

function vmOf(file: string): V1VirtualMachine {
  const vms = manifests.get(file)!.filter((o) => o.kind === "VirtualMachine");
  assertEquals(vms.length, 1, `${file} holds one VirtualMachine`);
  // Through JSON: the typed model fills every optional field it knows with undefined.
  return JSON.parse(JSON.stringify(V1VirtualMachineFromJSON(vms[0])));
}

function templateAnnotations(vm: V1VirtualMachine): Record<string, string> {
  return (vm.spec.template.metadata?.annotations ?? {}) as Record<string, string>;
}

Deno.test("manifests: every file in deploy/test is covered by this test", async () => {
  const present: string[] = [];
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    if (/\.ya?ml$/.test(entry.name)) present.push(entry.name);
  }
  assertEquals(present.sort(), [...FILES].sort());
});

Deno.test("manifests: names are unique and no namespace is fixed", () => {
  const seen = new Set<string>();
  for (const [file, objects] of manifests) {
    for (const object of objects) {
      const key = `${object.kind}/${object.metadata.name}`;
      assert(!seen.has(key), `${key} is defined twice (again in ${file})`);
      seen.add(key);
      assertEquals(object.metadata.namespace, undefined, `${file}: ${key} fixes a namespace`);
    }
  }
});

Deno.test("manifests: VMs are valid KubeVirt objects with no field the API would drop", () => {
  for (const [file, objects] of manifests) {
    for (const object of objects.filter((o) => o.kind === "VirtualMachine")) {
      assertEquals(object.apiVersion, "kubevirt.io/v1", file);
      assert(instanceOfV1VirtualMachine(object), `${file}: not a VirtualMachine`);
      const roundTripped = JSON.parse(JSON.stringify(V1VirtualMachineToJSON(vmOf(file))));
      assertEquals(droppedFields(object, roundTripped), [], `${file}: unknown fields`);
    }
  }
});

Deno.test("manifests: every VM opts in (one only later), and its parts refer to each other", () => {
  for (const file of FILES.filter((f) => f.startsWith("vm-"))) {
    const vm = vmOf(file);
    const spec = vm.spec.template.spec!;
    assertEquals(
      templateAnnotations(vm)[ANNOTATIONS.enabled],
      file === OPTS_IN_LATER ? undefined : "true",
      `${file}: opt-in`,
    );
    const volumes = (spec.volumes ?? []).map((v) => v.name).sort();
    const disks = (spec.domain.devices.disks ?? []).map((d) => d.name).sort();
    assertEquals(disks, volumes, `${file}: disks and volumes differ`);
    const networks = (spec.networks ?? []).map((n) => n.name).sort();
    const interfaces = (spec.domain.devices.interfaces ?? []).map((i) => i.name).sort();
    assertEquals(interfaces, networks, `${file}: interfaces and networks differ`);
    // The pod runs as the VM's service account: it is named by a serviceAccount volume
    // and defined in the same file, so applying the file is enough.
    const accounts = (spec.volumes ?? []).flatMap((v) =>
      v.serviceAccount ? [v.serviceAccount.serviceAccountName] : []
    );
    assertEquals(accounts, [vm.metadata!.name], `${file}: service account volume`);
    const defined = manifests.get(file)!.filter((o) => o.kind === "ServiceAccount");
    assertEquals(defined.map((o) => o.metadata.name), accounts, `${file}: ServiceAccount`);
    for (const volume of spec.volumes ?? []) {
      if (volume.containerDisk) {
        assertMatch(volume.containerDisk.image, /:[\w.-]+$/, `${file}: image without a tag`);
        assert(!volume.containerDisk.image.endsWith(":latest"), `${file}: image tag latest`);
      }
    }
  }
});

Deno.test("manifests: pod-network VMs cover masquerade and bridge binding", () => {
  const binding = (file: string) => {
    const spec = vmOf(file).spec.template.spec!;
    assertEquals(spec.networks?.map((n) => Boolean(n.pod)), [true], `${file}: pod network`);
    return Object.keys(spec.domain.devices.interfaces![0]).filter((k) => k !== "name");
  };
  assertEquals(binding("vm-cirros-masquerade.yaml"), ["masquerade"]);
  assertEquals(binding("vm-cirros-bridge.yaml"), ["bridge"]);
});

Deno.test("manifests: the no-DHCP VM's only network is the bridge NAD without IPAM", () => {
  const [nad] = manifests.get("net-attach-def-no-dhcp.yaml")!;
  assertEquals([nad.apiVersion, nad.kind], ["k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"]);
  const config = JSON.parse((nad.spec as { config: string }).config);
  assertEquals([config.type, config.ipam, config.isGateway], ["bridge", {}, false]);
  assertEquals(config.name, nad.metadata.name);
  const spec = vmOf("vm-cirros-no-dhcp.yaml").spec.template.spec!;
  assertEquals(spec.networks, [{ name: "nodhcp", multus: { networkName: nad.metadata.name } }]);
  assertEquals(spec.domain.devices.interfaces, [{ name: "nodhcp", bridge: {} }]);
});

Deno.test("manifests: the Ubuntu VM gets cloud-config through the service, no hand-set serial", () => {
  const vm = vmOf("vm-ubuntu-cloud-init.yaml");
  assertEquals(vm.spec.template.spec!.domain.firmware, undefined);
  const userData = templateAnnotations(vm)[ANNOTATIONS.userData];
  assert(userData?.startsWith("#cloud-config\n"), "user-data is not a cloud-config");
  const config = parseYaml(userData);
  assertEquals(config.write_files[0].path, "/var/lib/imds-test/marker");
  assertEquals(typeof config.password, "string");
  assertEquals(config.chpasswd, { expire: false });
  const image = vm.spec.template.spec!.volumes!.find((v) => v.containerDisk)!.containerDisk!.image;
  assertMatch(image, /^quay\.io\/containerdisks\/ubuntu:/);
});

Deno.test("manifests: the Secret VM names a Secret, defined alongside, with the user-data key", () => {
  const file = "vm-cirros-user-data-secret.yaml";
  const annotations = templateAnnotations(vmOf(file));
  assertEquals(annotations[ANNOTATIONS.userData], undefined);
  const secretName = annotations[ANNOTATIONS.userDataSecret];
  const secret = manifests.get(file)!.find((o) =>
    o.kind === "Secret" && o.metadata.name === secretName
  );
  assert(secret, `${file}: Secret "${secretName}" is not defined in the file`);
  const data = secret.stringData as Record<string, string>;
  assertEquals(Object.keys(data), [USER_DATA_SECRET_KEY]);
  assert(data[USER_DATA_SECRET_KEY].startsWith("#cloud-config\n"));
});

Deno.test("manifests: the README's install example is vm-ubuntu-cloud-init.yaml, word for word", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const install = readme.slice(readme.indexOf("## Install with Helm"));
  const named = install.indexOf("`deploy/test/vm-ubuntu-cloud-init.yaml`");
  assert(named >= 0, "the install section names the manifest it shows");
  const block = /\n( *)```yaml\n([\s\S]*?)\n *```\n/.exec(install.slice(named));
  assert(block, "a yaml block follows");
  const indent = block[1].length;
  const shown = block[2].split("\n").map((line) => line.slice(indent)).join("\n");
  const file = await Deno.readTextFile(new URL("./vm-ubuntu-cloud-init.yaml", import.meta.url));
  // The file's leading comment is for readers of the file; the rest is shown as is.
  const body = file.replace(/^(#.*\n)+/, "").trimEnd();
  assertEquals(shown, body);
});

Deno.test("manifests: the VM that opts in later is created halted, with no serial of its own", () => {
  const vm = vmOf(OPTS_IN_LATER);
  assertEquals(vm.spec.runStrategy, "Halted");
  assertEquals(vm.spec.template.metadata?.annotations, undefined);
  assertEquals(vm.spec.template.spec!.domain.firmware, undefined);
});

Deno.test("manifests: the Windows VM takes the OpenStack flavour, an SSH key Secret defined alongside and an admin name", () => {
  const file = "vm-windows-cloudbase-init.yaml";
  const annotations = templateAnnotations(vmOf(file));
  assertEquals(annotations[ANNOTATIONS.datasource], "openstack");
  assertEquals(annotations[ANNOTATIONS.adminUsername], "Administrator");
  const secretName = annotations[ANNOTATIONS.sshKeysSecret];
  const secret = manifests.get(file)!.find((o) =>
    o.kind === "Secret" && o.metadata.name === secretName
  );
  assert(secret, `${file}: Secret "${secretName}" is not defined in the file`);
  assertMatch(String((secret.stringData as Record<string, string>).admin), /^ssh-rsa /);
  assertMatch(annotations[ANNOTATIONS.userData], /^#ps1_sysnative\n/);
});
