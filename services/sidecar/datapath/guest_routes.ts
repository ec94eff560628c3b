/**
 * The way back to a link-local guest, in the kernel: a /32 route and a neighbour entry on the
 * sidecar end of its bridge's veth (several bridges may each have 169.254.x.x guests, so the
 * reply must leave through the right one). What is learned, and for how long, is decided by
 * arp_worker.ts with learned_guests.ts; this module only writes, removes and reads.
 *
 * The neighbour entry carries the MAC the guest's frame had when it entered through the VM
 * port. Letting the kernel resolve it instead would broadcast an ARP request through the bridge,
 * out of its uplink onto the VM's network, where any host could answer for the guest's address
 * and receive its replies. The entry is an ordinary (NUD_REACHABLE, not permanent) one the
 * kernel re-checks by unicast and may collect; it is written again while the guest is in use and
 * removed with the route.
 */

import { METADATA_ADDRESS } from "../../shared/contract.ts";
import { isLinkLocal } from "./attach.ts";
import {
  deleteNeighbour,
  deleteRoute,
  listNeighbours,
  listRoutes,
  replaceNeighbour,
  replaceRoute,
  RT_SCOPE_LINK,
} from "../kernel/rtnetlink.ts";

export interface GuestAddress {
  ip: string;
  /** "" when unknown: then only the route is written. */
  mac: string;
}

/** Installs (or moves to `sidecarIndex`) the route and neighbour entry back to `guest`. */
export function routeGuest(sidecarIndex: number, guest: GuestAddress): void {
  replaceRoute({
    destination: `${guest.ip}/32`,
    device: sidecarIndex,
    source: METADATA_ADDRESS,
    scope: RT_SCOPE_LINK,
  });
  writeGuestNeighbour(sidecarIndex, guest);
}

/** Writes the neighbour entry again (the kernel then trusts it for another reachable time). */
export function writeGuestNeighbour(sidecarIndex: number, guest: GuestAddress): void {
  if (guest.mac) replaceNeighbour({ index: sidecarIndex, address: guest.ip, mac: guest.mac });
}

/** Removes the route and neighbour entry back to `ip`; true when there was a route. */
export function unrouteGuest(sidecarIndex: number, ip: string): boolean {
  const routed = deleteRoute({ destination: `${ip}/32`, device: sidecarIndex });
  deleteNeighbour(sidecarIndex, ip);
  return routed;
}

/**
 * The link-local guests already routed back through `sidecarIndex`, e.g. by an earlier run: its
 * /32 routes, with the MAC from the neighbour table when the kernel still has it ("" otherwise).
 */
export function routedGuests(sidecarIndex: number): Map<string, string> {
  const neighbours = listNeighbours(sidecarIndex);
  const guests = new Map<string, string>();
  for (const route of listRoutes()) {
    const [ip, prefix] = route.destination.split("/");
    if (route.device === sidecarIndex && prefix === "32" && isLinkLocal(ip)) {
      guests.set(ip, neighbours.get(ip) ?? "");
    }
  }
  return guests;
}

/** TCP states in /proc/net/tcp that need no way back: TIME_WAIT, CLOSE, LISTEN. */
const NOT_CONNECTED = new Set(["06", "07", "0A"]);

/** "0100A8C0" (a /proc/net/tcp address, in the host's little-endian byte order) → "192.168.0.1". */
function procAddress(hex: string): string {
  const value = parseInt(hex, 16);
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join(".");
}

/**
 * The remote addresses of the TCP connections to `localAddress` that are still open, from the
 * text of /proc/net/tcp. Pure.
 */
export function openConnectionPeers(procNetTcp: string, localAddress: string): Set<string> {
  const peers = new Set<string>();
  for (const line of procNetTcp.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || NOT_CONNECTED.has(fields[3])) continue;
    const [local] = fields[1].split(":");
    const [remote] = fields[2].split(":");
    if (!local || !remote || procAddress(local) !== localAddress) continue;
    peers.add(procAddress(remote));
  }
  return peers;
}

/**
 * The guests with a connection to the metadata address still open in this network namespace
 * (a keep-alive connection sends no new connection request, yet needs its way back).
 */
export function guestsConnected(): Set<string> {
  return openConnectionPeers(Deno.readTextFileSync("/proc/net/tcp"), METADATA_ADDRESS);
}
