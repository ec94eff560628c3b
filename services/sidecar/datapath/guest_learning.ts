/**
 * Learning the way back to link-local guests, bounded so that no guest can exhaust its pod's or
 * its node's tables. A frame from a link-local sender entering through a VM port (its ARP
 * request for the metadata address, or its first connection request) is
 *  - known: that address with that MAC is learned already; it is marked used (and its neighbour
 *    entry written again now and then, so the kernel keeps trusting it while it is in use);
 *  - dropped: refused by the pod's routing a moment ago (guest_route_policy.ts), or over the
 *    learning rate of its VM port (learning_limiter.ts: floods are dropped, and reported once
 *    per episode);
 *  - learned: accepted by the policy, recorded in its bridge's bounded table (learned_guests.ts,
 *    displacing the guest least worth keeping when full) and routed back (guest_routes.ts).
 * A guest not seen for the idle time and with no connection open is forgotten and its route and
 * neighbour entry removed; it is learned again from its next request.
 */

import type { Logger } from "../../shared/log.ts";
import {
  guestsConnected,
  routedGuests,
  routeGuest,
  unrouteGuest,
  writeGuestNeighbour,
} from "./guest_routes.ts";
import {
  createLearnedGuests,
  GUEST_CAPACITY_PER_BRIDGE,
  type LearnedGuest,
  type LearnedGuests,
} from "./learned_guests.ts";
import {
  createLearningLimiter,
  type FloodReport,
  GUEST_LEARNING_RATE,
} from "./learning_limiter.ts";

/** A served bridge, as learning needs it. */
export interface LearningBridge {
  bridge: string;
  sidecarIndex: number;
  sidecarName: string;
  log: Logger;
  guests: LearnedGuests;
}

/** Whether a guest address may be routed back at all (guest_route_policy.ts, with its log). */
export interface LearningPolicy {
  /** Refused a moment ago: dropped without being judged (or counted) again. */
  refusedRecently(ip: string, now: number): boolean;
  /** Judges `ip`; logs a refusal once. */
  accepts(bridge: LearningBridge, ip: string, mac: string): boolean;
}

export type Admission =
  | { kind: "known" }
  | { kind: "dropped" }
  /** `error`: the route or neighbour entry could not be written (the guest is still recorded). */
  | { kind: "learned"; error?: unknown };

/** A learned guest's neighbour entry is written again when it is seen this long after. */
export const NEIGHBOUR_REFRESH_MS = 10_000;

export interface GuestLearner {
  /** A frame from link-local `guest` entered through VM port `port` of `bridge`. */
  admit(
    bridge: LearningBridge,
    port: number,
    guest: { ip: string; mac: string },
    now: number,
  ): Admission;
  /** Removes the guests idle for too long and logs the flood reports that are due. */
  sweep(bridges: Iterable<LearningBridge>, now: number): void;
  /** When `sweep` has something to do next; undefined when nothing is pending. */
  nextDueAt(bridges: Iterable<LearningBridge>): number | undefined;
  /** An empty table for a newly served bridge. */
  newTable(): LearnedGuests;
  /** Takes over the routes an earlier run left on the bridge's veth, as many as fit. */
  adopt(bridge: LearningBridge, now: number): void;
  /** Routes the guests a re-created veth's predecessor had through the new one. */
  restore(bridge: LearningBridge, previous: LearnedGuest[], now: number): void;
  /** The VM ports now served (the rate of the others is forgotten). */
  keepPorts(ports: readonly number[]): void;
}

export function createGuestLearner(
  settings: { idleMs: number },
  policy: LearningPolicy,
): GuestLearner {
  const limits = { capacity: GUEST_CAPACITY_PER_BRIDGE, idleMs: settings.idleMs };
  const limiter = createLearningLimiter(GUEST_LEARNING_RATE);
  /** Which bridge each VM port belongs to, for the flood reports. */
  const portBridges = new Map<number, LearningBridge>();

  /** Connections open now, read at most once per call that needs them. */
  const lazyConnected = () => {
    let open: Set<string> | undefined;
    return (ip: string) => (open ??= readConnected()).has(ip);
  };

  const remove = (bridge: LearningBridge, guest: LearnedGuest, why: string, debug = false) => {
    bridge.guests.forget(guest.ip);
    const fields = { client: guest.ip, clientMac: guest.mac };
    try {
      unrouteGuest(bridge.sidecarIndex, guest.ip);
      const message = `removed the route back to ${guest.ip} through ${bridge.sidecarName}: ${why}`;
      if (debug) bridge.log.debug(message, fields);
      else bridge.log.info(message, fields);
    } catch (error) {
      bridge.log.warn(`could not remove the route back to ${guest.ip}`, { ...fields, error });
    }
  };

  const record = (
    bridge: LearningBridge,
    guest: { ip: string; mac: string },
    now: number,
  ): unknown => {
    const displaced = bridge.guests.learn(guest.ip, guest.mac, now, lazyConnected());
    if (displaced) {
      remove(bridge, displaced, `${limits.capacity} guest addresses are routed back already`, true);
    }
    try {
      routeGuest(bridge.sidecarIndex, guest);
      return undefined;
    } catch (error) {
      return error;
    }
  };

  const logReport = (report: FloodReport) => {
    const bridge = portBridges.get(report.port);
    if (!bridge) return;
    const seconds = Math.max(1, Math.round((report.until - report.since) / 1000));
    const learned = report.learned > 0 ? `; ${report.learned} were learned meanwhile` : "";
    bridge.log.warn(
      `the VM on ${bridge.bridge} used ${report.addresses} new link-local addresses within ${seconds} s, more than the ${GUEST_LEARNING_RATE.perSecond} a second that are learned: ${report.dropped} of its requests from them got no ARP reply and no route back${learned}${
        report.ongoing ? " (still going on)" : ""
      }`,
      {
        port: report.port,
        dropped: report.dropped,
        addresses: report.addresses,
        learned: report.learned,
        examples: report.examples,
        seconds,
        ongoing: report.ongoing,
      },
    );
  };

  return {
    admit(bridge, port, guest, now) {
      portBridges.set(port, bridge);
      const known = bridge.guests.touch(guest.ip, guest.mac, now);
      if (known) {
        if (guest.mac && now - known.neighbourWritten >= NEIGHBOUR_REFRESH_MS) {
          known.neighbourWritten = now;
          try {
            writeGuestNeighbour(bridge.sidecarIndex, guest);
          } catch (error) {
            bridge.log.debug(`could not refresh the neighbour entry of ${guest.ip}`, { error });
          }
        }
        return { kind: "known" };
      }
      if (policy.refusedRecently(guest.ip, now)) return { kind: "dropped" };
      if (!limiter.allow(port, guest.ip, now)) return { kind: "dropped" };
      if (!policy.accepts(bridge, guest.ip, guest.mac)) return { kind: "dropped" };
      const error = record(bridge, guest, now);
      return error === undefined ? { kind: "learned" } : { kind: "learned", error };
    },
    sweep(bridges, now) {
      for (const bridge of bridges) {
        const idle = bridge.guests.idle(now);
        if (idle.length === 0) continue;
        const connected = lazyConnected();
        for (const guest of idle) {
          // A keep-alive connection sends no new connection request, yet needs its way back.
          if (connected(guest.ip)) bridge.guests.touch(guest.ip, guest.mac, now);
          else {remove(
              bridge,
              guest,
              `no traffic from it for ${Math.round(limits.idleMs / 1000)} s`,
            );}
        }
      }
      for (const report of limiter.reports(now)) logReport(report);
    },
    nextDueAt(bridges) {
      let earliest = limiter.nextReportAt();
      for (const bridge of bridges) {
        const at = bridge.guests.nextIdleAt();
        if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
      }
      return earliest;
    },
    newTable: () => createLearnedGuests(limits),
    adopt(bridge, now) {
      let routed: Map<string, string>;
      try {
        routed = routedGuests(bridge.sidecarIndex);
      } catch (error) {
        bridge.log.warn("could not read the routes learned earlier", { error });
        return;
      }
      const before = routed.size;
      for (const [ip, mac] of routed) {
        const displaced = bridge.guests.learn(ip, mac, now, lazyConnected());
        if (displaced) {
          bridge.guests.forget(displaced.ip);
          try {
            unrouteGuest(bridge.sidecarIndex, displaced.ip);
          } catch (error) {
            bridge.log.warn(`could not remove the route back to ${displaced.ip}`, { error });
          }
        }
      }
      if (before > bridge.guests.size) {
        bridge.log.info(
          `removed ${
            before - bridge.guests.size
          } of the ${before} routes back to guests found on ${bridge.sidecarName}: at most ${limits.capacity} are kept per bridge`,
          { found: before, kept: bridge.guests.size },
        );
      }
    },
    restore(bridge, previous, now) {
      for (const guest of previous) {
        if (!policy.accepts(bridge, guest.ip, guest.mac)) continue;
        const error = record(bridge, guest, now);
        if (error !== undefined) {
          bridge.log.warn(`could not restore the route back to ${guest.ip}`, {
            client: guest.ip,
            error,
          });
        }
      }
    },
    keepPorts(ports) {
      limiter.keepPorts(ports);
      for (const port of [...portBridges.keys()]) {
        if (!ports.includes(port)) portBridges.delete(port);
      }
    },
  };
}

/** The guests with a connection open; none when /proc/net/tcp cannot be read. */
function readConnected(): Set<string> {
  try {
    return guestsConnected();
  } catch {
    return new Set();
  }
}
