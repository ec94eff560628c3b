/**
 * The ARP responder's thread (a Web Worker started by arp_responder.ts). It blocks in a plain
 * poll() on one packet socket that sees every who-has for the metadata address in the pod's
 * network namespace, and every TCP SYN to it (a BPF filter drops everything else in the
 * kernel), so a request is answered within microseconds whatever the main thread is doing.
 *
 * A request is answered only when it entered through a VM port (a tap* port of a served bridge),
 * known exactly from the frame's ingress interface; the reply leaves through that bridge's
 * sidecar veth, carrying the veth's MAC.
 *
 * Link-local guests need a route back through the veth their bridge is attached by (several
 * bridges may each have 169.254.x.x guests). It is learned from the guest's ARP request, or,
 * when the guest never asked (it took the MAC from an announcement, or cached it from an
 * earlier run), from its first SYN: the route is installed, then that SYN is handed to the
 * kernel again through the veth, so the kernel's answer goes out along the new route at once
 * (the copy that arrived first may have been answered along the old one).
 *
 * A guest picks its own address, so before a route back is installed the address is checked
 * against the pod's own addresses and routes (guest_route_policy.ts): a guest claiming, say, the pod's
 * gateway 169.254.1.1 gets neither a route nor an ARP reply, and is logged once.
 *
 * What is learned is bounded (guest_learning.ts): a few addresses per bridge, forgotten when
 * idle, learned at a limited rate per VM port. A sender over the rate gets neither a route nor
 * an ARP reply; the flood is reported once with its counts.
 *
 * Protocol: the main thread posts a message, then adds 1 to the eventfd; the worker, woken,
 * yields to its event loop until it has received as many messages as the eventfd counted.
 */

/// <reference lib="deno.worker" />

import { createLogger, type Logger, type LogLevel, type LogSink } from "../../shared/log.ts";
import {
  buildArpAnnouncement,
  buildArpReply,
  isRequestFor,
  parseArpFrame,
} from "../kernel/arp_packet.ts";
import { createGuestLearner, type GuestLearner, type LearningBridge } from "./guest_learning.ts";
import type { LearnedGuests } from "./learned_guests.ts";
import {
  type ClientVerdict,
  createRefusals,
  judgeClient,
  type PodRouting,
  policyFor,
  readPodRouting,
} from "./guest_route_policy.ts";
import {
  EAGAIN,
  errno,
  libc,
  PACKET_OUTGOING,
  pollForInput,
  receiveFrom,
  sockaddrLl,
  sockaddrLlInterface,
  sockaddrLlPacketType,
  syscallError,
} from "../kernel/libc.ts";
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ethertypeOf } from "../kernel/ethernet.ts";
import { buildNeighborAdvertisement, parseNeighborSolicitation } from "../kernel/icmpv6_ndp.ts";
import { onLinkLocalNetwork } from "../kernel/ipv4.ts";
import { SIDECAR_VETH_PREFIX } from "./interface_names.ts";
import { parseTcpSyn, readdressFrame } from "../kernel/syn_packet.ts";

/** One served bridge, as the worker needs it. */
export interface ArpTarget {
  bridge: string;
  /** The sidecar veth carrying the metadata address: replies leave through it, with its MAC. */
  sidecarIndex: number;
  sidecarName: string;
  /** The veth's other end (the bridge port): a frame sent there arrives on the sidecar end. */
  bridgeSideIndex: number;
  mac: string;
  address: string;
  /** The IPv6 metadata address, answered by neighbour advertisements; none: IPv4 only. */
  address6?: string;
  /** Interface indexes of the bridge's VM (tap) ports: the only places requests are taken from. */
  vmPorts: number[];
  /** The bridge's other ports (e.g. the pod's uplink): requests entering there are ignored. */
  otherPorts: { index: number; name: string }[];
  /** Install a /32 route + neighbour back to link-local askers through the sidecar veth. */
  learnRoutes: boolean;
}

/** How learning is bounded in time (the rest is fixed, see guest_learning.ts). */
export interface LearningSettings {
  /** A guest address not seen for this long (and with no connection open) is forgotten. */
  guestRouteIdleMs: number;
}

export type ToWorker =
  /** `fd`: the filtered packet socket; `wake`: eventfd written after every later message. */
  | { type: "init"; fd: number; wake: number; logLevel: LogLevel; learning: LearningSettings }
  | { type: "targets"; targets: ArpTarget[] }
  | { type: "exit" };

export type FromWorker = { type: "failed"; error: string } | { type: "exited" };

interface Served extends ArpTarget, LearningBridge {
  log: Logger;
  /** Link-local guests with a route back through the veth. */
  guests: LearnedGuests;
}

/**
 * Log lines wait here until the frames at hand are answered, then go out in one write per
 * stream: logging never delays a reply.
 */
const pendingLines: { line: string; level: LogLevel }[] = [];
const bufferedSink: LogSink = (line, level) => {
  pendingLines.push({ line, level });
};
const encoder = new TextEncoder();

function flushLogs(): void {
  if (pendingLines.length === 0) return;
  const errors = pendingLines.filter((entry) => entry.level === "error").map((entry) => entry.line);
  const others = pendingLines.filter((entry) => entry.level !== "error").map((entry) => entry.line);
  pendingLines.length = 0;
  if (others.length > 0) Deno.stdout.writeSync(encoder.encode(others.join("\n") + "\n"));
  if (errors.length > 0) Deno.stderr.writeSync(encoder.encode(errors.join("\n") + "\n"));
}

const byPort = new Map<number, Served>();
const foreign = new Map<number, { entry: Served; port: string }>();
const served = new Map<string, Served>();
const frame = new Uint8Array(2048);
const from = new Uint8Array(20);
let fd = -1;
let wake = -1;
let logLevel: LogLevel = "info";
let announced = 0;
let received = 0;
let exiting = false;

/**
 * Frames that came in through an interface this thread did not know yet: the VM's port may be
 * plugged in, and the guest ask, just before the main thread has told this thread about the
 * port. They are kept briefly and handled as soon as their interface turns out to be a VM port,
 * so such a guest is answered at once rather than on its next try, a second later.
 */
const UNCLAIMED_KEEP_MS = 3000;
const UNCLAIMED_MAX = 64;
let unclaimed: { ingress: number; bytes: Uint8Array; at: number }[] = [];

/** When a VM port is new, the address is announced through it at these delays (ms). */
export const ANNOUNCE_DELAYS_MS = [0, 1000, 3000];
interface Announcement {
  due: number;
  bridge: string;
  port: number;
  first: boolean;
}
let announcements: Announcement[] = [];

/** Refused guest addresses are remembered (at most this many) and judged again after a while. */
const REFUSALS_MAX = 256;
const REFUSAL_RECHECK_MS = 30_000;
const refusals = createRefusals(REFUSALS_MAX, REFUSAL_RECHECK_MS);
/**
 * The pod's addresses, routes and neighbours, read when a guest not seen before must be judged
 * and reused for this long (or until the served bridges change): never a dump per packet.
 */
const ROUTING_MAX_AGE_MS = 1000;
let routing: { at: number; view: PodRouting } | undefined;
/** The served sidecar veths and bridges, as of the latest targets (set before they apply). */
let servedDevices: { sidecarIndexes: number[]; bridges: string[] } = {
  sidecarIndexes: [],
  bridges: [],
};

function podRouting(now: number): PodRouting {
  if (!routing || now - routing.at > ROUTING_MAX_AGE_MS) {
    routing = { at: now, view: readPodRouting() };
  }
  return routing.view;
}

/**
 * Whether the way back to link-local guest `ip` may go through `entry`'s veth (see
 * guest_route_policy.ts). A refused address is logged once and not judged again for a while.
 */
function mayLearn(entry: LearningBridge, ip: string, mac: string): boolean {
  const now = Date.now();
  if (refusals.recent(ip, now) !== undefined) return false;
  let verdict: ClientVerdict;
  try {
    const view = podRouting(now);
    verdict = judgeClient(
      ip,
      view,
      policyFor(view, servedDevices, SIDECAR_VETH_PREFIX),
    );
  } catch (error) {
    verdict = { accept: false, reason: `the pod's routes could not be read: ${error}` };
  }
  if (verdict.accept) {
    refusals.forget(ip);
    return true;
  }
  if (refusals.remember(ip, verdict.reason, now)) {
    entry.log.warn(
      `guest ${ip} (${
        mac || "MAC unknown"
      }) on ${entry.bridge} is not served (no ARP reply, no route back through ${entry.sidecarName}): ${verdict.reason}`,
      { client: ip, clientMac: mac, reason: verdict.reason },
    );
  }
  return false;
}

/** Set by the "init" message, which comes before any other. */
let learner: GuestLearner;

function startLearning(settings: LearningSettings): void {
  learner = createGuestLearner({ idleMs: settings.guestRouteIdleMs }, {
    refusedRecently: (ip, now) => refusals.recent(ip, now) !== undefined,
    accepts: mayLearn,
  });
}

function setTargets(targets: ArpTarget[]): void {
  const previous = new Map(served);
  const now = Date.now();
  for (const target of targets) {
    const before = previous.get(target.bridge);
    const fresh = target.vmPorts.filter((port) =>
      !before || before.mac !== target.mac || !before.vmPorts.includes(port)
    );
    for (const port of fresh) {
      ANNOUNCE_DELAYS_MS.forEach((delay, i) =>
        announcements.push({ due: now + delay, bridge: target.bridge, port, first: i === 0 })
      );
    }
  }
  routing = undefined; // the interfaces may have changed
  servedDevices = {
    sidecarIndexes: targets.map((target) => target.sidecarIndex),
    bridges: targets.map((target) => target.bridge),
  };
  served.clear();
  byPort.clear();
  foreign.clear();
  for (const target of targets) {
    const before = previous.get(target.bridge);
    const entry: Served = {
      ...target,
      log: before?.log ??
        createLogger({
          component: "sidecar",
          level: logLevel,
          fields: { bridge: target.bridge },
          sink: bufferedSink,
        }),
      // Routes learned through a veth that still exists stay valid.
      guests: before && before.sidecarIndex === target.sidecarIndex
        ? before.guests
        : learner.newTable(),
    };
    if (!before && target.learnRoutes) {
      // Started again: take over the routes an earlier run learned (as many as are allowed), so
      // they expire, and can be restored if the veth is re-created (guests with a cached MAC do
      // not ask again for a while).
      learner.adopt(entry, now);
    }
    if (before && before.sidecarIndex !== target.sidecarIndex && target.learnRoutes) {
      // The veth was re-created (same MAC): the guests that knew it will not ask again soon,
      // so put their routes back now.
      learner.restore(entry, before.guests.list(), now);
    }
    served.set(target.bridge, entry);
    for (const port of target.vmPorts) byPort.set(port, entry);
    for (const port of target.otherPorts) foreign.set(port.index, { entry, port: port.name });
  }
  learner.keepPorts([...byPort.keys()]);
  unclaimed = unclaimed.filter((item) => now - item.at <= UNCLAIMED_KEEP_MS);
  const claimed = unclaimed.filter((item) => byPort.has(item.ingress));
  if (claimed.length === 0) return;
  unclaimed = unclaimed.filter((item) => !byPort.has(item.ingress));
  for (const item of claimed) handle(byPort.get(item.ingress)!, item.ingress, item.bytes);
}

/**
 * A frame from VM port `port`: an ARP request or IPv6 neighbour solicitation to answer, or a
 * SYN to learn the way back from.
 */
function handle(entry: Served, port: number, bytes: Uint8Array): void {
  const ethertype = ethertypeOf(bytes);
  if (ethertype === ETH_P_ARP) reply(entry, port, bytes);
  else if (ethertype === ETH_P_IPV6) advertise(entry, bytes);
  else learnFromConnection(entry, port, bytes);
}

/**
 * Answers a neighbour solicitation for the IPv6 metadata address from the VM: the
 * advertisement, carrying the veth's MAC, goes back through the veth to the asker only. The
 * way back needs no learning: a guest asking from its link-local address is answered on the
 * link it asked on (the kernel binds such a connection to the veth it came in through). A
 * guest checking the address for duplicates (source "::") is not answered.
 */
function advertise(entry: Served, frameBytes: Uint8Array): void {
  if (entry.address6 === undefined) return;
  const solicitation = parseNeighborSolicitation(frameBytes);
  if (
    !solicitation || solicitation.target !== entry.address6 || solicitation.sourceIp === "::" ||
    solicitation.sourceIp === entry.address6
  ) return;
  const asker = {
    client: solicitation.sourceIp,
    clientMac: solicitation.sourceLinkAddress ?? solicitation.ethernetSource,
  };
  const sent = sendFrame(
    buildNeighborAdvertisement(solicitation, entry.address6, entry.mac),
    entry.sidecarIndex,
    ETH_P_IPV6,
  );
  if (sent < 0) {
    entry.log.warn("neighbour advertisement could not be sent", {
      ...asker,
      error: syscallError(`send on ${entry.sidecarName}`, errno()),
    });
    return;
  }
  entry.log.info(
    `neighbour solicitation for ${entry.address6} from ${asker.client} (${asker.clientMac}) answered: it is at ${entry.mac}`,
    asker,
  );
}

function reply(entry: Served, port: number, frameBytes: Uint8Array): void {
  const request = parseArpFrame(frameBytes);
  if (!request || !isRequestFor(request, entry.address)) return;
  const asker = { client: request.senderIp, clientMac: request.senderMac };
  let learned = false;
  let learnError: unknown;
  if (entry.learnRoutes && onLinkLocalNetwork(request.senderIp)) {
    const admission = learner.admit(entry, port, {
      ip: request.senderIp,
      mac: request.senderMac,
    }, Date.now());
    // Refused (no way back to it that would not break the pod's own routing) or over the rate.
    if (admission.kind === "dropped") return;
    learned = admission.kind === "learned";
    if (admission.kind === "learned") learnError = admission.error;
  }
  const sent = sendFrame(
    buildArpReply(request, entry.address, entry.mac),
    entry.sidecarIndex,
    ETH_P_ARP,
  );
  const sendError = sent < 0 ? syscallError(`send on ${entry.sidecarName}`, errno()) : undefined;
  // Log after replying: the asker is waiting.
  const { log } = entry;
  log.info(
    `ARP request for ${entry.address} from ${request.senderIp} (${request.senderMac})`,
    asker,
  );
  if (sendError) {
    log.warn("ARP reply could not be sent", { ...asker, error: sendError });
    return;
  }
  log.info(`ARP reply sent: ${entry.address} is at ${entry.mac}`, asker);
  if (learned) log.info(`route back to ${request.senderIp} through ${entry.sidecarName}`, asker);
  if (learnError) {
    log.warn("could not install the route back to the ARP asker", { ...asker, error: learnError });
  }
}

/**
 * A link-local guest connecting without a route back (it never sent an ARP request the
 * responder saw): learn the route from its SYN, then deliver that SYN again through the veth.
 */
function learnFromConnection(entry: Served, port: number, frameBytes: Uint8Array): void {
  if (!entry.learnRoutes) return;
  const syn = parseTcpSyn(frameBytes);
  if (
    !syn || syn.destinationIp !== entry.address || !onLinkLocalNetwork(syn.sourceIp) ||
    syn.sourceIp === entry.address
  ) return;
  const client = { client: syn.sourceIp, clientMac: syn.ethernetSource };
  const admission = learner.admit(entry, port, {
    ip: syn.sourceIp,
    mac: syn.ethernetSource,
  }, Date.now());
  if (admission.kind !== "learned") return; // known already, refused, or over the rate
  if (admission.error !== undefined) {
    entry.log.warn("could not install the route back to a connecting guest", {
      ...client,
      error: admission.error,
    });
    return;
  }
  const sent = sendFrame(
    readdressFrame(frameBytes, entry.mac),
    entry.bridgeSideIndex,
    ETH_P_IP,
  );
  entry.log.info(
    `route back to ${syn.sourceIp} through ${entry.sidecarName} (learned from its connection to ${entry.address}:${syn.destinationPort}; it had not asked by ARP)`,
    client,
  );
  if (sent < 0) {
    entry.log.debug("could not hand the connection request to the kernel again", {
      ...client,
      error: syscallError("send", errno()),
    });
  }
}

function sendFrame(bytes: Uint8Array<ArrayBuffer>, ifindex: number, protocol: number): number {
  const to = sockaddrLl(ifindex, protocol);
  return Number(libc().sendto(fd, bytes, BigInt(bytes.length), 0, to, to.length));
}

/**
 * Announces the address straight to the VM (out of its tap port, not through the bridge, so
 * nobody else on the VM's network hears it): a guest that cached another MAC for
 * 169.254.169.254 before the sidecar was ready (the bridge's, or a host's behind the uplink)
 * moves to the sidecar's.
 */
function announceDue(now: number): void {
  const due = announcements.filter((item) => item.due <= now);
  announcements = announcements.filter((item) => item.due > now);
  for (const item of due) {
    const entry = served.get(item.bridge);
    if (!entry || !entry.vmPorts.includes(item.port)) continue;
    const sent = sendFrame(buildArpAnnouncement(entry.mac, entry.address), item.port, ETH_P_ARP);
    if (sent < 0) {
      entry.log.debug("could not announce the metadata address to the VM", {
        error: syscallError("send", errno()),
      });
    } else if (item.first) {
      entry.log.info(`announced ${entry.address} is at ${entry.mac} to the VM`, {
        port: item.port,
      });
    }
  }
}

/** Reads every queued frame; errno is reliable here (synchronous calls). */
function drain(): void {
  for (;;) {
    const got = receiveFrom(fd, frame, from);
    if (got < 0) {
      const code = errno();
      if (code === EAGAIN) return;
      throw syscallError("receive ARP requests", code);
    }
    if (sockaddrLlPacketType(from) === PACKET_OUTGOING) continue;
    const ingress = sockaddrLlInterface(from);
    const entry = byPort.get(ingress);
    if (entry) {
      handle(entry, ingress, frame.subarray(0, got));
      continue;
    }
    // An asker outside this VM (behind the pod's uplink) must not reach this VM's metadata.
    // Any other ingress is the same frame seen again on the bridge or a veth, or a port that
    // is not known yet.
    const outside = foreign.get(ingress);
    if (!outside) {
      unclaimed.push({ ingress, bytes: frame.slice(0, got), at: Date.now() });
      if (unclaimed.length > UNCLAIMED_MAX) unclaimed.shift();
      continue;
    }
    const request = parseArpFrame(frame.subarray(0, got));
    if (request) {
      outside.entry.log.debug(
        `ARP request for ${outside.entry.address} from ${request.senderIp} (${request.senderMac}) ignored: it came in through ${outside.port}, not from this VM`,
        { client: request.senderIp, clientMac: request.senderMac },
      );
    }
  }
}

async function loop(): Promise<void> {
  const pollfds = pollForInput([fd, wake]);
  const counter = new Uint8Array(8);
  try {
    for (;;) {
      // Messages announced through the eventfd may still be on their way: let them arrive.
      while (received < announced) await new Promise((resolve) => setTimeout(resolve, 0));
      if (exiting) break;
      const due = [...announcements.map((item) => item.due), learner.nextDueAt(served.values())]
        .filter((at) => at !== undefined);
      const timeout = due.length > 0 ? Math.max(0, Math.min(...due) - Date.now()) : -1;
      flushLogs(); // before blocking: nothing waits unwritten while idle
      const ready = libc().poll(pollfds.bytes, pollfds.count, timeout);
      announceDue(Date.now());
      learner.sweep(served.values(), Date.now());
      if (ready <= 0) continue; // timeout or EINTR
      // Messages first: queued frames may be for a bridge the next message adds.
      if (pollfds.readable(1) && Number(libc().read(wake, counter, 8n)) === 8) {
        announced += Number(new DataView(counter.buffer).getBigUint64(0, true));
        continue;
      }
      if (pollfds.readable(0)) drain();
    }
  } catch (error) {
    self.postMessage({ type: "failed", error: String(error) } satisfies FromWorker);
  }
  flushLogs();
  libc().close(fd);
  self.postMessage({ type: "exited" } satisfies FromWorker);
  self.close();
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      fd = message.fd;
      wake = message.wake;
      logLevel = message.logLevel;
      startLearning(message.learning);
      loop();
      return;
    case "targets":
      received++;
      setTargets(message.targets);
      return;
    case "exit":
      received++;
      exiting = true;
      return;
  }
};
