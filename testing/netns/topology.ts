/**
 * Builders for a faithful copy of a KubeVirt virt-launcher pod's network
 * namespace, one binding mode at a time, with the names, MACs, addresses and
 * sysctls KubeVirt's virt-handler sets (pkg/network in kubevirt/kubevirt):
 *
 *   node ns (cluster gateway 10.244.0.1) ── veth ── pod ns eth0 (10.244.0.7)
 *   pod ns:  k6t-* bridges, tap ports ── veth ── guest ns (the VM's NICs)
 *
 * A tap device needs a VM process behind it, so each tap port is a veth named
 * like KubeVirt's tap (tap0, tap<11 hex>) whose peer is the guest's NIC in a
 * separate "guest" namespace.
 */
import { METADATA_ADDRESS } from "../../services/shared/contract.ts";
import { vethNames } from "../../services/sidecar/datapath/interface_names.ts";
import { inNamespace, ipBatch, mustRun, sysctl } from "./command.ts";
import { type Lab, randomMac } from "./lab.ts";

/** The pod network, as a routed CNI (calico-style) gives it to a pod. */
export const POD_NETWORK = {
  podIp: "10.244.0.7",
  gateway: "10.244.0.1",
  prefix: 24,
  /** An address on the pod subnet that nothing owns. */
  unusedIp: "10.244.0.99",
} as const;

/** KubeVirt's masquerade defaults (api.DefaultVMCIDR, network.StaticMasqueradeBridgeMAC). */
export const MASQUERADE = {
  bridgeMac: "02:00:00:00:00:00",
  gateway: "10.0.2.1",
  guestIp: "10.0.2.2",
  prefix: 24,
  gatewayV6: "fd10:0:2::1/120",
} as const;

/** Live-migration ports KubeVirt keeps out of the masquerade DNAT. */
const MIGRATION_PORTS = [49152, 49153];

export interface Pod {
  lab: Lab;
  /** The virt-launcher pod's network namespace. */
  ns: string;
  /** The node's namespace: the pod network's gateway and Multus networks' far ends. */
  node: string;
  /** The node's end of the pod's eth0 veth. */
  nodeUplink: string;
  /** MAC the CNI gave the pod's eth0. */
  mac: string;
  /** The pod's uplink interface: eth0, or eth0-nic once bridge binding took it over. */
  uplink: string;
  nics: VmNic[];
}

export interface Guest {
  lab: Lab;
  /** The guest's (the VM's) network namespace. */
  ns: string;
}

export type BindingMode = "masquerade" | "bridge" | "multus";

/** One VM interface as KubeVirt wired it. */
export interface VmNic {
  mode: BindingMode;
  bridge: string;
  tap: string;
  /** The interface inside the guest. */
  guestInterface: string;
  /** The MAC the VM's interface carries. */
  guestMac: string;
  /** Multus only: the node-side bridge of the secondary network (in the node namespace). */
  networkBridge?: string;
}

/**
 * A virt-launcher pod as the cluster's CNI leaves it, before KubeVirt wires the
 * VM: eth0 with the pod IP and a default route to the node. Each pod gets its
 * own node namespace (`<role>-node`), so pods in one lab never share a subnet.
 */
export async function createPod(lab: Lab, role = "pod"): Promise<Pod> {
  const node = await lab.addNamespace(`${role}-node`);
  const ns = await lab.addNamespace(role);
  const mac = randomMac();
  const nodeUplink = "vethpod0";
  await ipBatch(node, [
    `link add ${nodeUplink} type veth peer name eth0 netns ${ns}`,
    `address add ${POD_NETWORK.gateway}/${POD_NETWORK.prefix} dev ${nodeUplink}`,
    `link set ${nodeUplink} up`,
  ]);
  await ipBatch(ns, [
    `link set eth0 address ${mac}`,
    `address add ${POD_NETWORK.podIp}/${POD_NETWORK.prefix} dev eth0`,
    `link set eth0 up`,
    `route add default via ${POD_NETWORK.gateway} dev eth0`,
  ]);
  return { lab, ns, node, nodeUplink, mac, uplink: "eth0", nics: [] };
}

/** A guest (VM) namespace with no interfaces yet. */
export async function createGuest(lab: Lab, role = "vm"): Promise<Guest> {
  return { lab, ns: await lab.addNamespace(role) };
}

/** Creates tap port `tap` on `bridge` in the pod; its peer is `guestInterface` in the guest. */
async function addTap(
  pod: Pod,
  guest: Guest,
  bridge: string,
  tap: string,
  guestInterface: string,
  guestMac: string,
): Promise<void> {
  await ipBatch(pod.ns, [
    `link add ${tap} type veth peer name ${guestInterface} netns ${guest.ns}`,
    `link set ${tap} master ${bridge}`,
    `link set ${tap} up`,
  ]);
  await ipBatch(guest.ns, [
    `link set ${guestInterface} address ${guestMac}`,
    `link set ${guestInterface} up`,
  ]);
}

/**
 * Masquerade binding on the pod network: k6t-eth0 (02:00:00:00:00:00,
 * 10.0.2.1/24, fd10:0:2::1/120) with tap0, forwarding and route_localnet on,
 * KubeVirt's nftables NAT; the guest gets 10.0.2.2/24 via 10.0.2.1, as
 * KubeVirt's DHCP server would hand it out.
 */
export async function addMasqueradeNic(
  pod: Pod,
  guest: Guest,
  { guestInterface = "eth0" }: { guestInterface?: string } = {},
): Promise<VmNic> {
  const bridge = "k6t-eth0";
  await ipBatch(pod.ns, [
    `link add ${bridge} type bridge`,
    `link set ${bridge} address ${MASQUERADE.bridgeMac}`,
    `link set ${bridge} up`,
    `address add ${MASQUERADE.gateway}/${MASQUERADE.prefix} dev ${bridge}`,
    `address add ${MASQUERADE.gatewayV6} dev ${bridge} nodad`,
  ]);
  const guestMac = randomMac();
  await addTap(pod, guest, bridge, "tap0", guestInterface, guestMac);
  await sysctl(pod.ns, [
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    `net.ipv4.conf.${bridge}.route_localnet=1`,
  ]);
  const { guestIp, gateway } = MASQUERADE;
  await mustRun(inNamespace(pod.ns, ["nft", "-f", "-"]), {
    stdin: `
table ip nat {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "eth0" counter jump KUBEVIRT_PREINBOUND
  }
  chain input {
    type nat hook input priority 100; policy accept;
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 counter dnat to ${guestIp}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${guestIp} counter masquerade
    oifname "${bridge}" counter jump KUBEVIRT_POSTINBOUND
  }
  chain KUBEVIRT_PREINBOUND {
    tcp dport { ${MIGRATION_PORTS.join(", ")} } counter return
    counter dnat to ${guestIp}
  }
  chain KUBEVIRT_POSTINBOUND {
    ip saddr 127.0.0.1 counter snat to ${gateway}
  }
}
`,
  });
  await configureGuestAddress(guest, guestInterface, `${guestIp}/${MASQUERADE.prefix}`, gateway);
  const nic: VmNic = { mode: "masquerade", bridge, tap: "tap0", guestInterface, guestMac };
  pod.nics.push(nic);
  return nic;
}

/**
 * Bridge binding on the pod network: eth0 is renamed eth0-nic (random MAC,
 * learning off) and enslaved to k6t-eth0 (169.254.75.1<index>/32); a
 * placeholder keeps the name eth0 and the pod IP; arp_ignore=1. The guest gets
 * the pod's MAC and IP and the cluster gateway, as KubeVirt's DHCP would give.
 *
 * KubeVirt's placeholder is a `dummy` link, which this kernel does not have:
 * here it is one end of a veth pair whose other end stays down in the pod, so
 * it carries no traffic either (KubeVirt leaves its dummy down too).
 */
export async function addBridgeBindingNic(
  pod: Pod,
  guest: Guest,
  { guestInterface = "eth0", index = 0 }: { guestInterface?: string; index?: number } = {},
): Promise<VmNic> {
  const bridge = "k6t-eth0";
  const podCidr = `${POD_NETWORK.podIp}/${POD_NETWORK.prefix}`;
  await ipBatch(pod.ns, [
    "link set eth0 down",
    `address del ${podCidr} dev eth0`,
    "link set eth0 name eth0-nic",
    // The placeholder for KubeVirt's dummy (no dummy link type on this kernel).
    "link add eth0 type veth peer name eth0-ph",
    `address replace ${podCidr} dev eth0`,
    `link set eth0-nic address ${randomMac()}`,
    `link add ${bridge} type bridge`,
    `link set eth0-nic master ${bridge}`,
    `link set ${bridge} up`,
    `address add 169.254.75.1${index}/32 dev ${bridge}`,
  ]);
  await addTap(pod, guest, bridge, "tap0", guestInterface, pod.mac);
  await sysctl(pod.ns, ["net.ipv4.conf.all.arp_ignore=1"]);
  await ipBatch(pod.ns, ["link set eth0-nic up"]);
  await mustRun(["bridge", "-n", pod.ns, "link", "set", "dev", "eth0-nic", "learning", "off"]);
  pod.uplink = "eth0-nic";
  await configureGuestAddress(guest, guestInterface, podCidr, POD_NETWORK.gateway);
  const nic: VmNic = { mode: "bridge", bridge, tap: "tap0", guestInterface, guestMac: pod.mac };
  pod.nics.push(nic);
  return nic;
}

/** KubeVirt's hashed interface id: the first 11 hex digits of sha256(network name). */
export async function networkHash(networkName: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(networkName));
  return Array.from(new Uint8Array(digest)).map((byte) => byte.toString(16).padStart(2, "0"))
    .join("").slice(0, 11);
}

export interface MultusNicOptions {
  /** The VM's network name (spec.networks[].name), hashed into the interface names. */
  network: string;
  guestInterface?: string;
  /** Legacy ordinal naming (net1, k6t-net1, tap1) instead of hashed names. */
  ordinal?: number;
}

/**
 * A Multus secondary network with no IPAM, in bridge binding: Multus's bridge
 * CNI plugs `pod<hash>` (its far end on a node bridge with no address); KubeVirt
 * renames it `<hash>-nic` (random MAC, learning off), creates `k6t-<hash>` with
 * no address and `tap<hash>`. The guest's NIC gets the pod interface's MAC and
 * no address (there is no DHCP on this network).
 */
export async function addMultusNic(
  pod: Pod,
  guest: Guest,
  { network, guestInterface = "eth0", ordinal }: MultusNicOptions,
): Promise<VmNic> {
  const hash = await networkHash(network);
  const podInterface = ordinal === undefined ? `pod${hash}` : `net${ordinal}`;
  const trimmed = ordinal === undefined ? hash : `net${ordinal}`;
  const bridge = `k6t-${trimmed}`;
  const tap = ordinal === undefined ? `tap${hash}` : `tap${ordinal}`;
  const podNic = `${trimmed}-nic`;
  const nodeBridge = `br-${hash.slice(0, 8)}`;
  const nodeEnd = `m${hash}`;
  const podMac = randomMac();

  // What Multus and the bridge CNI plugin leave in the pod.
  await ipBatch(pod.node, [
    `link add ${nodeBridge} type bridge`,
    `link set ${nodeBridge} up`,
    `link add ${nodeEnd} type veth peer name ${podInterface} netns ${pod.ns}`,
    `link set ${nodeEnd} master ${nodeBridge}`,
    `link set ${nodeEnd} up`,
  ]);
  await ipBatch(pod.ns, [
    `link set ${podInterface} address ${podMac}`,
    `link set ${podInterface} up`,
  ]);

  // What KubeVirt's bridge binding does to it (no IPAM: no dummy, no bridge address).
  await ipBatch(pod.ns, [
    `link set ${podInterface} down`,
    `link set ${podInterface} name ${podNic}`,
    `link set ${podNic} address ${randomMac()}`,
    `link add ${bridge} type bridge`,
    `link set ${podNic} master ${bridge}`,
    `link set ${bridge} up`,
  ]);
  await addTap(pod, guest, bridge, tap, guestInterface, podMac);
  await ipBatch(pod.ns, [`link set ${podNic} up`]);
  await mustRun(["bridge", "-n", pod.ns, "link", "set", "dev", podNic, "learning", "off"]);
  const nic: VmNic = {
    mode: "multus",
    bridge,
    tap,
    guestInterface,
    guestMac: podMac,
    networkBridge: nodeBridge,
  };
  pod.nics.push(nic);
  return nic;
}

/** Gives a guest interface an address (and optionally a default route), as the guest OS would. */
export async function configureGuestAddress(
  guest: Guest,
  guestInterface: string,
  cidr: string,
  gateway?: string,
): Promise<void> {
  const lines = [`address add ${cidr} dev ${guestInterface}`, `link set ${guestInterface} up`];
  if (gateway) lines.push(`route add default via ${gateway} dev ${guestInterface}`);
  await ipBatch(guest.ns, lines);
}

/** Removes a bridge KubeVirt created, as when the VM's network is torn down. */
export async function deleteBridge(pod: Pod, bridge: string): Promise<void> {
  await ipBatch(pod.ns, [`link del ${bridge}`]);
}

/** The sidecar's veth pair on one bridge, named as the sidecar names it. */
export interface SidecarVeth {
  /** The end that is a port of the bridge (imdb-…). */
  bridgeSide: string;
  /** The end carrying 169.254.169.254 (imds-…). */
  sidecar: string;
  /** The MAC of the sidecar end. */
  mac: string;
}

/**
 * The veth pair the sidecar attaches to `bridge` (see datapath/attach.ts), for tests that
 * exercise one datapath piece without running the sidecar: `imdb-<id>` a port of the bridge,
 * `imds-<id>` carrying 169.254.169.254/32, both up.
 */
export async function addSidecarVeth(
  pod: Pod,
  bridge: string,
  { mac = randomMac() }: { mac?: string } = {},
): Promise<SidecarVeth> {
  const { bridgeSide, sidecar } = vethNames(bridge);
  await ipBatch(pod.ns, [
    `link add ${bridgeSide} type veth peer name ${sidecar}`,
    `link set ${sidecar} address ${mac}`,
    `link set ${bridgeSide} address fe:00:00:00:00:01`,
    `link set ${bridgeSide} master ${bridge}`,
    `address add ${METADATA_ADDRESS}/32 dev ${sidecar}`,
    `link set ${bridgeSide} up`,
    `link set ${sidecar} up`,
  ]);
  return { bridgeSide, sidecar, mac };
}
