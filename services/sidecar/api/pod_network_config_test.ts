import { assert, assertEquals, assertStringIncludes } from "../../../testing/assert.ts";
import { cloudInitInstalled, renderWithCloudInit } from "../../../testing/cloud_init.ts";
import { parseSubnet } from "./ip_address.ts";
import { parseNetworkStatus, type PodInterfaceStatus } from "./network_status.ts";
import {
  type GuestNic,
  networkConfigV2,
  networkDataJson,
  planGuestNics,
  type PodNetworkOptions,
} from "./pod_network_config.ts";

// Shapes as the public docs of each plugin show them (Multus writes the list).
const OVN_PRIMARY = {
  name: "ovn-kubernetes",
  interface: "eth0",
  ips: ["10.244.1.5", "fd00:10:244:1::5"],
  mac: "0a:58:0a:f4:01:05",
  default: true,
  dns: {},
};
const CALICO_PRIMARY_NO_INTERFACE = {
  name: "k8s-pod-network",
  ips: ["10.52.0.15"],
  default: true,
  dns: {},
};
/** Multus + bridge CNI + whereabouts IPAM (no gateway), hashed interface name. */
const BRIDGE_WHEREABOUTS = {
  name: "vms/bridge-net",
  interface: "pod16477688c0e",
  ips: ["192.168.2.17"],
  mac: "02:6e:1a:9c:00:02",
  dns: {},
};
/** Multus + SR-IOV CNI, static IPAM, dual stack, with gateways and DNS. */
const SRIOV = {
  name: "vms/sriov-net",
  interface: "pod2c26b46b68f",
  ips: ["10.56.217.171", "2001:db8:2::171"],
  mac: "ca:fe:c0:ff:ee:01",
  dns: { nameservers: ["10.56.217.1"], domain: "example.test", search: ["svc.example.test"] },
  gateway: ["10.56.217.1", "2001:db8:2::1"],
  "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:d8:00.2" } },
};
/** Multus + bridge CNI, IPv6 only (KubeVirt's DHCP serves IPv4 only), legacy ordinal name. */
const BRIDGE_IPV6 = {
  name: "vms/v6-net",
  interface: "net2",
  ips: ["fd00:abcd::25"],
  mac: "02:6e:1a:9c:00:03",
  dns: {},
};

const OPTIONS: PodNetworkOptions = {
  subnets: ["10.56.217.0/24", "2001:db8:2::/64", "192.168.2.0/24"].map((s) => parseSubnet(s)!),
  expectedInterfaces: [],
};

function statuses(...entries: unknown[]): PodInterfaceStatus[] {
  const parsed = parseNetworkStatus(JSON.stringify(entries, null, 4));
  if ("error" in parsed) throw new Error(parsed.error);
  return parsed.interfaces;
}

function nics(entries: unknown[], options: PodNetworkOptions = OPTIONS): GuestNic[] {
  const plan = planGuestNics(statuses(...entries), options);
  if (!("nics" in plan)) throw new Error(JSON.stringify(plan));
  return plan.nics;
}

Deno.test("the pod network keeps KubeVirt's DHCP; an SR-IOV NIC gets its addresses, gateways and DNS", () => {
  const [primary, sriov] = nics([OVN_PRIMARY, SRIOV]);
  assertEquals({ mac: primary.mac, dhcp4: primary.dhcp4, addresses: primary.addresses }, {
    mac: "0a:58:0a:f4:01:05",
    dhcp4: true,
    addresses: [],
  });
  assertEquals(sriov.dhcp4, false);
  assertEquals(sriov.addresses.map((a) => `${a.address.text}/${a.prefix}`), [
    "10.56.217.171/24",
    "2001:db8:2::171/64",
  ]);
  assertEquals(sriov.gateways.map((g) => [g.via.text, g.onLink]), [
    ["10.56.217.1", false],
    ["2001:db8:2::1", false],
  ]);
  assertEquals(sriov.search, ["example.test", "svc.example.test"]);
});

Deno.test("a bridge NIC with an IPv4 address keeps DHCP; an IPv6-only one gets a static address", () => {
  const [bridge, v6] = nics([BRIDGE_WHEREABOUTS, BRIDGE_IPV6]);
  assertEquals([bridge.dhcp4, bridge.addresses.length], [true, 0]);
  assertEquals([v6.podInterface, v6.dhcp4], ["net2", false]);
  // Not in any configured subnet: a host prefix.
  assertEquals(v6.addresses.map((a) => `${a.address.text}/${a.prefix}`), ["fd00:abcd::25/128"]);
});

Deno.test("a gateway outside every known subnet is reached on-link", () => {
  const [nic] = nics([{ ...SRIOV, "device-info": { type: "pci" } }], {
    subnets: [],
    expectedInterfaces: [],
  });
  assertEquals(nic.addresses[0].prefix, 32);
  assert(nic.gateways.every((g) => g.onLink));
  assertStringIncludes(networkConfigV2([nic]), "on-link: true");
});

Deno.test("entries that are no VM NIC are left out; a default entry without interface is eth0", () => {
  const found = nics([
    { name: "kube-system/binding-plugin", interface: "tmp1", ips: [], mac: "02:00:00:00:00:09" },
    { ...CALICO_PRIMARY_NO_INTERFACE, mac: "02:00:00:00:00:0a" },
  ]);
  assertEquals(found.map((n) => n.podInterface), ["eth0"]);
});

Deno.test("masquerade: the primary NIC is matched by the guest MAC given, not the pod's", () => {
  const [primary] = nics([OVN_PRIMARY], { ...OPTIONS, primaryMac: "52:54:00:12:34:56" });
  assertEquals(primary.mac, "52:54:00:12:34:56");
  assertEquals(primary.dhcp6, true);
});

Deno.test("network-status missing an interface the pod asked for is pending, not partial", () => {
  const plan = planGuestNics(statuses(OVN_PRIMARY), {
    ...OPTIONS,
    expectedInterfaces: ["pod16477688c0e", "pod2c26b46b68f"],
  });
  assertEquals(plan, {
    pending: "network-status does not list the pod interfaces pod16477688c0e, pod2c26b46b68f yet",
  });
});

Deno.test("bad network-status is refused with a sentence naming the entry", () => {
  assertEquals(parseNetworkStatus("[{"), {
    error: `it is not valid JSON (${errorOf("[{")})`,
  });
  assertEquals(parseNetworkStatus(JSON.stringify([{ ...SRIOV, ips: ["10.56.217.300"] }])), {
    error: `entry 1: network "vms/sriov-net": "10.56.217.300" in "ips" is not an IP address`,
  });
  assertEquals(parseNetworkStatus(JSON.stringify([{ ...SRIOV, mac: "ca:fe" }])), {
    error: `entry 1: network "vms/sriov-net": "mac" "ca:fe" is not a MAC address`,
  });
  const noMac = planGuestNics(statuses({ ...SRIOV, mac: undefined }), OPTIONS);
  assertEquals(noMac, {
    error:
      `network-status gives no MAC for pod interface pod2c26b46b68f (network "vms/sriov-net"), so the guest's NIC cannot be matched`,
  });
});

function errorOf(text: string): string {
  try {
    JSON.parse(text);
    return "";
  } catch (error) {
    return (error as Error).message;
  }
}

Deno.test("network_data.json: links by MAC, DHCP and static networks, DNS services", () => {
  const data = networkDataJson(nics([OVN_PRIMARY, SRIOV]));
  assertEquals(data.links, [
    { id: "eth0", type: "phy", ethernet_mac_address: "0a:58:0a:f4:01:05" },
    { id: "pod2c26b46b68f", type: "phy", ethernet_mac_address: "ca:fe:c0:ff:ee:01" },
  ]);
  const networks = data.networks as Record<string, unknown>[];
  assertEquals(networks.map((n) => [n.link, n.type, n.ip_address, n.netmask]), [
    ["eth0", "ipv4_dhcp", undefined, undefined],
    ["eth0", "ipv6_dhcp", undefined, undefined],
    ["pod2c26b46b68f", "ipv4", "10.56.217.171", "255.255.255.0"],
    ["pod2c26b46b68f", "ipv6", "2001:db8:2::171", "ffff:ffff:ffff:ffff::"],
  ]);
  assertEquals(data.services, [{ type: "dns", address: "10.56.217.1" }]);
});

const GUEST_NICS = {
  "0a:58:0a:f4:01:05": "enp1s0",
  "ca:fe:c0:ff:ee:01": "enp7s0",
  "02:6e:1a:9c:00:02": "enp2s0",
  "02:6e:1a:9c:00:03": "enp3s0",
};
const ALL = [OVN_PRIMARY, SRIOV, BRIDGE_WHEREABOUTS, BRIDGE_IPV6];

Deno.test({
  name: "cloud-init accepts the network-config and renders each NIC under the guest's own name",
  ignore: !cloudInitInstalled() && Deno.env.get("CI") !== "true",
  fn: async () => {
    const rendered = await renderWithCloudInit(
      "network-config",
      networkConfigV2(nics(ALL)),
      GUEST_NICS,
    );
    // cloud-init's network schema exists from 24.1; older releases only parse and render.
    assert(rendered.schema === "validated" || rendered.schema === "unavailable");
    assertStringIncludes(rendered.eni, "iface enp1s0 inet dhcp");
    assertStringIncludes(rendered.eni, "iface enp2s0 inet dhcp");
    assertStringIncludes(rendered.eni, "iface enp7s0 inet static\n    address 10.56.217.171/24");
    assertStringIncludes(rendered.eni, "address 2001:db8:2::171/64");
    assertStringIncludes(rendered.eni, "route add default gw 10.56.217.1");
    assertStringIncludes(rendered.eni, "address fd00:abcd::25/128");
    assertStringIncludes(rendered.netplan, "macaddress: ca:fe:c0:ff:ee:01");
    assertStringIncludes(rendered.netplan, "- 10.56.217.171/24");
  },
});

Deno.test({
  name: "cloud-init's OpenStack reader turns network_data.json into the same configuration",
  ignore: !cloudInitInstalled() && Deno.env.get("CI") !== "true",
  fn: async () => {
    const rendered = await renderWithCloudInit(
      "network_data.json",
      JSON.stringify(networkDataJson(nics(ALL))),
      GUEST_NICS,
    );
    assertStringIncludes(rendered.eni, "iface enp1s0 inet dhcp");
    assertStringIncludes(rendered.eni, "iface enp7s0 inet static\n    address 10.56.217.171/24");
    assertStringIncludes(rendered.eni, "address 2001:db8:2::171/64");
    assertStringIncludes(rendered.eni, "address fd00:abcd::25/128");
    assertStringIncludes(rendered.netplan, "10.56.217.1");
  },
});
