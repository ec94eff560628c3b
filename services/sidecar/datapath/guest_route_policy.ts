/**
 * Which link-local guests may get a route back through a sidecar veth.
 *
 * A guest on a link-local network is routed back with a /32 route and a neighbour entry on the
 * sidecar veth of its bridge, learned from its ARP request or first SYN (arp_worker.ts). The
 * guest chooses its source address, so it could claim an address the pod itself uses: Calico's
 * gateway 169.254.1.1, KubeVirt's DHCP server address 169.254.75.1N on a bridge, the metadata
 * address, any local address. A learned /32 would then take over that address and break the
 * pod's network. So an address is learned only when it is
 *  (a) a link-local unicast address (169.254.1.0 – 169.254.254.255, RFC 3927), not
 *      169.254.169.254;
 *  (b) not an address of the pod's network namespace;
 *  (c) not routed by the pod through another device: no route more specific than
 *      169.254.0.0/16 covers it, it is no route's gateway, and no other device has it as an ARP
 *      neighbour — except through the sidecar's own veths (a guest moving between link-local
 *      networks keeps working) and, for neighbour entries, the served VM bridges (the kernel
 *      may have noted the guest there before the sidecar attached).
 *
 * The check reads a snapshot of the pod's addresses, routes and neighbours (readPodRouting),
 * taken only when an unknown guest appears; refusals are remembered (createRefusals) so a
 * guest repeating itself costs nothing and is logged once.
 */

import { METADATA_ADDRESS } from "../../shared/contract.ts";
import {
  listAllNeighbours,
  listIpv4Addresses,
  listLinks,
  listRoutes,
  type Route,
} from "../kernel/rtnetlink.ts";
import { ipv4Number, isLinkLocalUnicast, prefixContains } from "../kernel/ipv4.ts";

/** The pod network namespace as the check needs it. */
export interface PodRouting {
  /** Every IPv4 address of every interface. */
  addresses: { index: number; address: string }[];
  /** Every IPv4 route of every table. */
  routes: Route[];
  /** Every IPv4 neighbour entry with a link-layer address. */
  neighbours: { index: number; address: string }[];
  /** Interface names by index, for the operator's messages. */
  interfaces: Map<number, string>;
}

/** Devices whose routes and neighbours a learned route may replace or sit beside. */
export interface ClientPolicy {
  /** The sidecar's own veths (imds-*): what was learned there may move to another one. */
  sidecarDevices: ReadonlySet<number>;
  /** The served VM bridges: a neighbour entry for a guest there is the kernel's, harmless. */
  vmBridges: ReadonlySet<number>;
}

export type ClientVerdict = { accept: true } | { accept: false; reason: string };

/** Prefix lengths up to this one (0.0.0.0/0, 169.254.0.0/16) do not claim a single guest. */
const GENERIC_PREFIX = 16;

function deviceName(routing: PodRouting, index: number | undefined): string {
  if (index === undefined) return "no single interface";
  return routing.interfaces.get(index) ?? `interface ${index}`;
}

function describe(route: Route, routing: PodRouting): string {
  const table = route.table === 255
    ? " (local table)"
    : route.table && route.table !== 254
    ? ` (table ${route.table})`
    : "";
  return `${route.destination}${route.gateway ? ` via ${route.gateway}` : ""} dev ${
    deviceName(routing, route.device)
  }${table}`;
}

/** Decides whether the route back to guest address `ip` may be installed. Pure. */
export function judgeClient(ip: string, routing: PodRouting, policy: ClientPolicy): ClientVerdict {
  if (ip === METADATA_ADDRESS) {
    return { accept: false, reason: `${ip} is the metadata address itself` };
  }
  const value = ipv4Number(ip);
  if (value === undefined || !isLinkLocalUnicast(ip)) {
    return {
      accept: false,
      reason:
        `${ip} is not a link-local unicast address (RFC 3927: 169.254.1.0 to 169.254.254.255)`,
    };
  }
  const local = routing.addresses.find((address) => address.address === ip);
  if (local) {
    return {
      accept: false,
      reason: `${ip} is an address of this pod (on ${deviceName(routing, local.index)})`,
    };
  }
  const ours = (index: number | undefined) =>
    index !== undefined && policy.sidecarDevices.has(index);
  for (const route of routing.routes) {
    if (ours(route.device)) continue;
    if (route.gateway === ip) {
      return {
        accept: false,
        reason: `the pod uses ${ip} as a gateway (route ${describe(route, routing)})`,
      };
    }
    const match = prefixContains(route.destination, value);
    if (match !== undefined && match > GENERIC_PREFIX) {
      return {
        accept: false,
        reason: `the pod already routes ${ip} elsewhere (route ${describe(route, routing)})`,
      };
    }
  }
  const neighbour = routing.neighbours.find((entry) =>
    entry.address === ip && !ours(entry.index) && !policy.vmBridges.has(entry.index)
  );
  if (neighbour) {
    return {
      accept: false,
      reason: `the pod has ${ip} as a neighbour on ${deviceName(routing, neighbour.index)}`,
    };
  }
  return { accept: true };
}

/** A fresh snapshot of the pod's addresses, routes, neighbours and interface names. */
export function readPodRouting(): PodRouting {
  return {
    addresses: listIpv4Addresses().map(({ index, address }) => ({ index, address })),
    routes: listRoutes(),
    neighbours: listAllNeighbours().map(({ index, address }) => ({ index, address })),
    interfaces: new Map(listLinks().map((link) => [link.index, link.name])),
  };
}

/**
 * The policy for a snapshot: the served sidecar veths plus any interface named like one
 * (`sidecarPrefix`, a veth of a bridge that is gone), and the served bridges by name.
 */
export function policyFor(
  routing: PodRouting,
  served: { sidecarIndexes: number[]; bridges: string[] },
  sidecarPrefix: string,
): ClientPolicy {
  const sidecarDevices = new Set(served.sidecarIndexes);
  const vmBridges = new Set<number>();
  for (const [index, name] of routing.interfaces) {
    if (name.startsWith(sidecarPrefix)) sidecarDevices.add(index);
    if (served.bridges.includes(name)) vmBridges.add(index);
  }
  return { sidecarDevices, vmBridges };
}

/** Refused guest addresses: not judged again for a while, logged once per reason. */
export interface Refusals {
  /** The reason `ip` was refused, if it was within the last `recheckMs`. */
  recent(ip: string, now: number): string | undefined;
  /** Records a refusal; true when it should be logged (new address, or a new reason). */
  remember(ip: string, reason: string, now: number): boolean;
  /** The address was accepted after all. */
  forget(ip: string): void;
  readonly size: number;
}

/**
 * At most `max` addresses are remembered (the oldest is dropped first); an address is judged
 * again after `recheckMs`, in case the pod's routing changed, without being logged again for
 * the same reason.
 */
export function createRefusals(max: number, recheckMs: number): Refusals {
  const entries = new Map<string, { reason: string; at: number }>();
  return {
    recent(ip, now) {
      const entry = entries.get(ip);
      return entry && now - entry.at < recheckMs ? entry.reason : undefined;
    },
    remember(ip, reason, now) {
      const before = entries.get(ip);
      entries.delete(ip);
      entries.set(ip, { reason, at: now });
      while (entries.size > max) entries.delete(entries.keys().next().value!);
      return before?.reason !== reason;
    },
    forget(ip) {
      entries.delete(ip);
    },
    get size() {
      return entries.size;
    },
  };
}
