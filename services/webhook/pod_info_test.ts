import { assertEquals, assertStringIncludes } from "../../testing/assert.ts";
import { podInfo, podInfoWarnings } from "./pod_info.ts";

const NETWORKS = JSON.stringify([
  { name: "sriov-net", namespace: "vms", interface: "pod2c26b46b68f" },
  { name: "bridge-net", namespace: "vms", interface: "pod16477688c0e", mac: "02:00:00:00:00:01" },
]);

Deno.test("labels and annotations reach the sidecar as downward API files, never as env", () => {
  const info = podInfo({}, "imds-pod-info");
  assertEquals(info.volume, {
    name: "imds-pod-info",
    downwardAPI: {
      items: [
        { path: "labels", fieldRef: { apiVersion: "v1", fieldPath: "metadata.labels" } },
        { path: "annotations", fieldRef: { apiVersion: "v1", fieldPath: "metadata.annotations" } },
      ],
    },
  });
  assertEquals(info.mount, {
    name: "imds-pod-info",
    mountPath: "/var/run/imds-pod",
    readOnly: true,
  });
  assertEquals(info.env, [
    { name: "IMDS_POD_LABELS_FILE", value: "/var/run/imds-pod/labels" },
    { name: "IMDS_POD_ANNOTATIONS_FILE", value: "/var/run/imds-pod/annotations" },
  ]);
});

Deno.test("pod-networks: network-status as a file, the interfaces KubeVirt asked Multus for, the subnets", () => {
  const info = podInfo({
    "imds.kubevirt.io/network-config-from": "pod-networks",
    "imds.kubevirt.io/network-config-subnets": "10.56.217.0/24, fd00:10::/64,bogus",
    "k8s.v1.cni.cncf.io/networks": NETWORKS,
  }, "imds-pod-info");
  const items = (info.volume.downwardAPI as { items: unknown[] }).items;
  assertEquals(items[2], {
    path: "network-status",
    fieldRef: {
      apiVersion: "v1",
      fieldPath: "metadata.annotations['k8s.v1.cni.cncf.io/network-status']",
    },
  });
  assertEquals(info.env.slice(2), [
    { name: "IMDS_NETWORK_CONFIG_FROM", value: "pod-networks" },
    { name: "IMDS_NETWORK_STATUS_FILE", value: "/var/run/imds-pod/network-status" },
    { name: "IMDS_POD_INTERFACES", value: "pod2c26b46b68f,pod16477688c0e" },
    { name: "IMDS_POD_NETWORK_SUBNETS", value: "10.56.217.0/24,fd00:10::/64" },
  ]);
  assertEquals(info.warnings.length, 1);
  assertStringIncludes(info.warnings[0], `"bogus" is not a subnet`);
});

Deno.test("the VM's owner is warned about refused custom metadata and an overridden generation", () => {
  const warnings = podInfoWarnings({
    "meta.imds.kubevirt.io/ok": "fine",
    "meta.imds.kubevirt.io/big": "x".repeat(5000),
    "imds.kubevirt.io/network-config-from": "pod-networks",
    "imds.kubevirt.io/network-config": "version: 2\n",
  });
  assertEquals(warnings, [
    "custom metadata refused: meta.imds.kubevirt.io/big: the value is 5000 bytes, more than the 4096 allowed",
    "imds.kubevirt.io/network-config-from is ignored while a network-config is set (imds.kubevirt.io/network-config, -secret or -configmap): a network-config you write always wins",
  ]);
  assertEquals(podInfoWarnings({ "imds.kubevirt.io/network-config-from": "multus" }), [
    `imds.kubevirt.io/network-config-from is "multus"; the only value is "pod-networks", so no network configuration is generated`,
  ]);
});
