/**
 * The sidecar's presence on a VM bridge: a veth pair whose bridge-side end is a port of the
 * bridge and whose other end carries the metadata address. Also the metadata address on
 * loopback, and which guests may be routed back through the veth (guest_routes.ts writes the
 * routes).
 *
 * Apart from arp_ignore=1 on the bridge device (see quietBridge), nothing here touches the
 * bridge, its other ports or its addresses.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { Logger } from "../../shared/log.ts";
import { LOOPBACK, vethNames } from "./interface_names.ts";
import { formatMac } from "../kernel/ethernet.ts";
import { isLinkLocalUnicast } from "../kernel/ipv4.ts";
import {
  addIpv4Address,
  addIpv6Address,
  createVethPair,
  deleteLink,
  disableIpv6AddressGeneration,
  findLink,
  IPV4_DEVCONF,
  type Ipv4Address,
  type Link,
  listLinks,
  setIpv4Conf,
  setLink,
} from "../kernel/rtnetlink.ts";

export const METADATA_CIDR = `${METADATA_ADDRESS}/32`;
export const METADATA_CIDR_V6 = `${METADATA_ADDRESS_V6}/128`;
/**
 * The sidecar end's own IPv6 link-local address, on every veth: with it the kernel has the
 * fe80::/64 route and a source for its neighbour solicitations, so it can answer guests that
 * ask from their link-local addresses. (The bridge guard lets the veth's IPv6 frames reach VM
 * ports only.) The address OpenStack serves metadata on, as 169.254.169.254 is for IPv4.
 */
export const SIDECAR_LINK_LOCAL_CIDR = "fe80::a9fe:a9fe/64";

export interface VethEnd {
  name: string;
  index: number;
  mac: string;
}

export interface Attachment {
  bridge: string;
  bridgeIndex: number;
  /** Carries 169.254.169.254/32; its MAC is what the ARP responder announces. */
  sidecar: VethEnd;
  /** The bridge port. */
  bridgeSide: VethEnd;
  /** True when an existing pair was found and reused (the MAC guests cached stays valid). */
  reused: boolean;
}

/**
 * Puts 169.254.169.254/32 on loopback (and brings it up), so the server can bind the address
 * before any bridge exists and passt's sockets in the pod namespace reach it.
 */
export function ensureLoopbackAddress(log: Logger): void {
  const lo = findLink(LOOPBACK);
  if (!lo) throw new Error("the network namespace has no loopback interface");
  if (!lo.up) setLink(lo.index, { up: true }, LOOPBACK);
  if (addIpv4Address(lo.index, METADATA_CIDR, { what: LOOPBACK })) {
    log.info(`added ${METADATA_CIDR} to loopback`);
  } else {
    log.info(`${METADATA_CIDR} is already on loopback`);
  }
}

/**
 * Puts fd00:ec2::254/128 on loopback. Returns false, after saying why, when the pod has IPv6
 * turned off (disable_ipv6): the service then answers over IPv4 only.
 */
export function ensureLoopbackAddressV6(log: Logger): boolean {
  const lo = findLink(LOOPBACK);
  if (!lo) throw new Error("the network namespace has no loopback interface");
  try {
    if (addIpv6Address(lo.index, METADATA_CIDR_V6, LOOPBACK)) {
      log.info(`added ${METADATA_CIDR_V6} to loopback`);
    } else {
      log.info(`${METADATA_CIDR_V6} is already on loopback`);
    }
    return true;
  } catch (error) {
    log.warn(
      `IPv6 is turned off in the pod (${METADATA_CIDR_V6} cannot be added to loopback); the service answers on ${METADATA_ADDRESS} only`,
      { error },
    );
    return false;
  }
}

/**
 * A random locally administered MAC starting with fe: a bridge without an explicit MAC takes
 * its lowest port MAC, and fe:… is never the lowest, so the bridge keeps its own address.
 */
export function bridgePortMac(
  random: (bytes: Uint8Array) => Uint8Array = (bytes) => crypto.getRandomValues(bytes),
): string {
  const bytes = random(new Uint8Array(6));
  bytes[0] = 0xfe;
  return formatMac(bytes);
}

/** Settings on the sidecar end: the kernel never answers ARP there (the responder does, for
 * 169.254.169.254 only), its own ARP requests use 169.254.169.254 as sender, and replies to
 * link-local guests are not dropped by reverse-path filtering. */
export const SIDECAR_END_IPV4 = { arp_ignore: 8, arp_announce: 2, rp_filter: 0 } as const;

function end(link: Link): VethEnd {
  return { name: link.name, index: link.index, mac: link.mac };
}

/**
 * The kernel answers ARP on an interface for every address of the namespace (arp_ignore=0), so
 * with 169.254.169.254 local a VM bridge would announce it too, with the bridge's MAC, to every
 * host on the VM's layer-2 network. arp_ignore=1 limits the bridge to its own addresses (what
 * KubeVirt already sets for bridge binding; masquerade's 10.0.2.1 is on the bridge itself).
 */
export function bridgeArpIgnore(bridge: Link): number {
  return bridge.ipv4Conf[IPV4_DEVCONF.arp_ignore] ?? 0;
}

function quietBridge(bridge: Link, log: Logger): void {
  if (bridge.ipv4Conf.length === 0 || bridgeArpIgnore(bridge) >= 1) return;
  setIpv4Conf(bridge.index, { arp_ignore: 1 }, bridge.name);
  log.info(
    `${bridge.name} now answers ARP only for its own addresses, so only this sidecar announces ${METADATA_ADDRESS}`,
    { bridge: bridge.name, arp_ignore: 1 },
  );
}

/**
 * Makes sure the veth pair for `bridge` exists, is up, is a port of the bridge and carries the
 * metadata address. Idempotent: reuses a pair left by an earlier run; a pair re-created while
 * running gets `previousMac` back.
 */
export function attachToBridge(
  bridge: Link,
  log: Logger,
  options: { previousMac?: string } = {},
): Attachment {
  const names = vethNames(bridge.name);
  let links = listLinks();
  let sidecar = links.find((link) => link.name === names.sidecar);
  let bridgeSide = links.find((link) => link.name === names.bridgeSide);
  const reusable = sidecar?.kind === "veth" && bridgeSide?.kind === "veth";
  if (!reusable) {
    // A half-made pair (one end deleted, or a name taken by something else we made): start over.
    for (const stray of [sidecar, bridgeSide]) {
      if (stray) {
        log.warn(`removing incomplete interface ${stray.name} before re-creating the veth pair`);
        deleteLink(stray.index, stray.name);
      }
    }
    createVethPair(names.sidecar, names.bridgeSide);
    links = listLinks();
    sidecar = links.find((link) => link.name === names.sidecar);
    bridgeSide = links.find((link) => link.name === names.bridgeSide);
    if (!sidecar || !bridgeSide) throw new Error(`veth pair ${names.sidecar} vanished`);
    setLink(bridgeSide.index, { mac: bridgePortMac() }, bridgeSide.name);
    // Re-created while running: keep the MAC guests have cached for 169.254.169.254.
    if (options.previousMac) setLink(sidecar.index, { mac: options.previousMac }, sidecar.name);
    disableIpv6AddressGeneration(sidecar.index, sidecar.name);
    disableIpv6AddressGeneration(bridgeSide.index, bridgeSide.name);
  }
  quietBridge(bridge, log);
  const s = sidecar!;
  const b = bridgeSide!;

  setIpv4Conf(s.index, SIDECAR_END_IPV4, s.name);
  addIpv4Address(s.index, METADATA_CIDR, { what: s.name });
  try {
    addIpv6Address(s.index, SIDECAR_LINK_LOCAL_CIDR, s.name);
  } catch (error) {
    // IPv6 turned off in the pod: IPv4 guests are served all the same.
    log.debug(`no IPv6 link-local address on ${s.name}`, { error });
  }
  // Same MTU as the bridge before joining it: an auto-MTU bridge takes its smallest port MTU.
  if (bridge.mtu && (b.mtu !== bridge.mtu || s.mtu !== bridge.mtu)) {
    setLink(b.index, { mtu: bridge.mtu }, b.name);
    setLink(s.index, { mtu: bridge.mtu }, s.name);
  }
  if (b.master !== bridge.index) setLink(b.index, { master: bridge.index }, b.name);
  if (!b.up) setLink(b.index, { up: true }, b.name);
  if (!s.up) setLink(s.index, { up: true }, s.name);

  const fresh = findLink(s.name) ?? s;
  const bridgeFresh = findLink(b.name) ?? b;
  return {
    bridge: bridge.name,
    bridgeIndex: bridge.index,
    sidecar: end(fresh),
    bridgeSide: end(bridgeFresh),
    reused: reusable,
  };
}

/** Whether an attachment still stands, judged from a fresh link and address listing. */
export function attachmentIntact(
  attachment: Attachment,
  bridge: Link,
  links: Link[],
  addresses: Ipv4Address[],
): boolean {
  const sidecar = links.find((link) => link.index === attachment.sidecar.index);
  const bridgeSide = links.find((link) => link.index === attachment.bridgeSide.index);
  return (bridge.ipv4Conf.length === 0 || bridgeArpIgnore(bridge) >= 1) &&
    !!sidecar && !!bridgeSide && sidecar.name === attachment.sidecar.name &&
    bridgeSide.name === attachment.bridgeSide.name && sidecar.up && bridgeSide.up &&
    bridgeSide.master === bridge.index && attachment.bridgeIndex === bridge.index &&
    addresses.some((address) =>
      address.index === sidecar.index && address.address === METADATA_ADDRESS
    );
}

/**
 * The only clients that get a route back through the veth: link-local hosts (RFC 3927 §2.1,
 * 169.254.1.0 – 169.254.254.255), other than the metadata address.
 */
export function isLinkLocal(address: string): boolean {
  return isLinkLocalUnicast(address) && address !== METADATA_ADDRESS;
}
