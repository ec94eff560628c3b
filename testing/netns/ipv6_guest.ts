/**
 * IPv6 variants of the lab's guests: a guest that has only IPv6 on a NIC (what a single-stack
 * IPv6 cluster or an IPv6-only secondary network gives it), a workload behind the guest that
 * the guest forwards and masquerades for (as Docker does), and the pod network in IPv6.
 */
import { inNamespace, ipBatch, mustRun, sysctl } from "./command.ts";
import type { Guest, Pod } from "./topology.ts";

/** KubeVirt's masquerade IPv6 defaults (api.DefaultVMIpv6CIDR): the guest behind fd10:0:2::1. */
export const MASQUERADE_V6 = { gateway: "fd10:0:2::1", guestIp: "fd10:0:2::2", prefix: 120 };

/** The pod network's IPv6 side, as a dual-stack CNI gives it. */
export const POD_NETWORK_V6 = { podIp: "fd00:10:244::7", gateway: "fd00:10:244::1", prefix: 64 };

/**
 * Takes every IPv4 address and route off `guestInterface` and gives it `cidr` (and a default
 * route via `gateway`, when given): the guest reaches the world over IPv6 only.
 */
export async function makeIpv6Only(
  guest: Guest,
  guestInterface: string,
  cidr?: string,
  gateway?: string,
): Promise<void> {
  await mustRun(["ip", "-n", guest.ns, "-4", "address", "flush", "dev", guestInterface]);
  const lines: string[] = [];
  if (cidr) lines.push(`address add ${cidr} dev ${guestInterface} nodad`);
  if (gateway) lines.push(`route add ::/0 via ${gateway} dev ${guestInterface}`);
  if (lines.length > 0) await ipBatch(guest.ns, lines);
}

/** An IPv6 address on the pod's eth0 and the node's end (a dual-stack pod network). */
export async function addPodIpv6(pod: Pod): Promise<void> {
  const { podIp, gateway, prefix } = POD_NETWORK_V6;
  await ipBatch(pod.node, [`address add ${gateway}/${prefix} dev ${pod.nodeUplink} nodad`]);
  await ipBatch(pod.ns, [`address add ${podIp}/${prefix} dev eth0 nodad`]);
}

export interface NestedWorkload {
  /** The workload's own namespace (a container or nested VM inside the guest). */
  ns: string;
}

/**
 * A workload one routing hop behind the guest: its own namespace on a veth to the guest
 * (172.17.0.0/16 and fd17::/64, as Docker's default bridge), the guest forwarding and
 * masquerading its traffic out of `uplink`, as Docker does.
 */
export async function addNestedWorkload(
  guest: Guest,
  uplink: string,
): Promise<NestedWorkload> {
  const ns = await guest.lab.addNamespace("nested");
  await ipBatch(guest.ns, [
    `link add docker0 type veth peer name eth0 netns ${ns}`,
    "address add 172.17.0.1/16 dev docker0",
    "address add fd17::1/64 dev docker0 nodad",
    "link set docker0 up",
  ]);
  await ipBatch(ns, [
    "address add 172.17.0.2/16 dev eth0",
    "address add fd17::2/64 dev eth0 nodad",
    "link set eth0 up",
    "route add default via 172.17.0.1",
    "route add ::/0 via fd17::1",
  ]);
  await sysctl(guest.ns, ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
  await mustRun(inNamespace(guest.ns, ["nft", "-f", "-"]), {
    stdin: `
table inet docker {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${uplink}" masquerade
  }
}
`,
  });
  return { ns };
}
