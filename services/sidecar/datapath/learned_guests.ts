/**
 * The link-local guests a sidecar veth routes back to, bounded: at most `capacity` per bridge,
 * each forgotten after `idleMs` without traffic from it, and, when full, the one least worth
 * keeping makes room for a new one (so the real guest can always be learned again).
 *
 * Pure bookkeeping with the clock passed in; arp_worker.ts installs and removes the routes and
 * neighbour entries this table decides about (guest_routes.ts).
 */

import { GUEST_ROUTE_IDLE_SECONDS } from "../../shared/contract.ts";

/** One learned guest address and what is known about its use. */
export interface LearnedGuest {
  ip: string;
  /** The MAC it used on the VM port ("" when taken over from routes without a neighbour). */
  mac: string;
  /** When a frame from it was last seen (ms, the caller's clock). */
  lastSeen: number;
  /** How many frames (ARP requests, connection requests) it was seen in. */
  seen: number;
  /** When its neighbour entry was last written. */
  neighbourWritten: number;
}

export interface LearnedGuestLimits {
  /** Most guests routed back through one bridge's veth. */
  capacity: number;
  /** A guest not seen for this long (and with no open connection) is forgotten. */
  idleMs: number;
}

/**
 * Four addresses per VM NIC. A guest NIC on a link-local network has one IPv4 link-local
 * address (RFC 3927 picks one per interface); four leave room for an address the guest moved
 * away from (kept until it is idle), a second configured address and a nested guest, and the
 * least used one gives way to a new one anyway. A flooding guest then holds at most four routes
 * and four neighbour entries per NIC: the kernel's neighbour table limit (gc_thresh3, 1024 by
 * default) is shared by every network namespace on the node, and even a hundred VMs each
 * flooding one NIC stay under gc_thresh2 (512), where the kernel starts evicting other pods'
 * entries.
 */
export const GUEST_CAPACITY_PER_BRIDGE = 4;

/**
 * How long a guest address stays routed back without traffic from it, unless configured
 * (GUEST_ROUTE_IDLE_SECONDS). A guest quiet for longer is learned again from its next request.
 */
export const GUEST_IDLE_SECONDS_DEFAULT: number = GUEST_ROUTE_IDLE_SECONDS.default;

export interface LearnedGuests {
  readonly size: number;
  get(ip: string): LearnedGuest | undefined;
  /**
   * A frame from `ip` with source `mac`: when that pair is already learned, marks it used
   * (most recently used, one more sighting) and returns it; otherwise returns undefined.
   */
  touch(ip: string, mac: string, now: number): LearnedGuest | undefined;
  /**
   * Records `ip` at `mac` (new, or a new MAC for a known address). When the table is full, the
   * guest least worth keeping is dropped and returned, so the caller removes its route: one
   * without an open connection (`inUse`) before one with, one seen once (as a spoofed sender
   * is) before one seen again, the least recently seen first.
   */
  learn(
    ip: string,
    mac: string,
    now: number,
    inUse: (ip: string) => boolean,
  ): LearnedGuest | undefined;
  forget(ip: string): void;
  /** The guests not seen for `idleMs` or longer, least recently seen first. */
  idle(now: number): LearnedGuest[];
  /** When the next guest reaches `idleMs` without being seen; undefined when none is learned. */
  nextIdleAt(): number | undefined;
  /** Every learned guest, least recently seen first. */
  list(): LearnedGuest[];
}

export function createLearnedGuests(limits: LearnedGuestLimits): LearnedGuests {
  // Insertion order is recency order: a guest seen again is moved to the end.
  const guests = new Map<string, LearnedGuest>();
  const moveToEnd = (guest: LearnedGuest) => {
    guests.delete(guest.ip);
    guests.set(guest.ip, guest);
  };
  const leastWorthKeeping = (inUse: (ip: string) => boolean): LearnedGuest => {
    const all = [...guests.values()];
    const idleOnes = all.filter((guest) => !inUse(guest.ip));
    const pool = idleOnes.length > 0 ? idleOnes : all;
    return pool.find((guest) => guest.seen < 2) ?? pool[0];
  };
  return {
    get size() {
      return guests.size;
    },
    get: (ip) => guests.get(ip),
    touch(ip, mac, now) {
      const guest = guests.get(ip);
      if (!guest || guest.mac !== mac) return undefined;
      guest.lastSeen = now;
      guest.seen++;
      moveToEnd(guest);
      return guest;
    },
    learn(ip, mac, now, inUse) {
      const before = guests.get(ip);
      let displaced: LearnedGuest | undefined;
      if (!before && guests.size >= limits.capacity) {
        displaced = leastWorthKeeping(inUse);
        guests.delete(displaced.ip);
      }
      const guest: LearnedGuest = {
        ip,
        mac,
        lastSeen: now,
        seen: (before?.seen ?? 0) + 1,
        neighbourWritten: now,
      };
      guests.delete(ip);
      guests.set(ip, guest);
      return displaced;
    },
    forget(ip) {
      guests.delete(ip);
    },
    idle(now) {
      return [...guests.values()].filter((guest) => now - guest.lastSeen >= limits.idleMs);
    },
    nextIdleAt() {
      let earliest: number | undefined;
      for (const guest of guests.values()) {
        const at = guest.lastSeen + limits.idleMs;
        if (earliest === undefined || at < earliest) earliest = at;
      }
      return earliest;
    },
    list: () => [...guests.values()],
  };
}
