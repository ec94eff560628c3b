/**
 * An in-memory network namespace behind the sidecar's NetworkKernel handle, for testing the
 * reconcile loop without root: links (bridges, their ports, veth pairs), IPv4 addresses, link
 * events, the ARP responder and the interception as recordings, and failures on demand.
 *
 * Mutators (`addBridge`, `addPort`, `deleteLink`, `replaceBridge`) behave like the kernel: a
 * deleted veth end takes its peer with it, a deleted bridge releases its ports, and every
 * change is reported as a link event. `idle()` resolves once the loop has handled every
 * event and waits for the next one.
 */

import type { Logger, LogLevel } from "../services/shared/log.ts";
import { METADATA_ADDRESS } from "../services/shared/contract.ts";
import type { ArpResponder, ArpTarget } from "../services/sidecar/datapath/arp_responder.ts";
import type { Attachment } from "../services/sidecar/datapath/attach.ts";
import type { InterceptContext } from "../services/sidecar/datapath/bridge_intercept.ts";
import { vethNames } from "../services/sidecar/datapath/interface_names.ts";
import type { NetworkKernel } from "../services/sidecar/datapath/network_kernel.ts";
import type { LinkEvents } from "../services/sidecar/kernel/link_events.ts";
import type { Ipv4Address, Link } from "../services/sidecar/kernel/rtnetlink.ts";

/** The kernel operations a test can watch, fail or interrupt. */
export type Step =
  | "listLinks"
  | "listIpv4Addresses"
  | "attachToBridge"
  | "installIntercept"
  | "removeIntercept"
  | "startArpResponder"
  | "updateResponder";

export interface FakeResponder extends ArpResponder {
  /** Every target list the loop sent, in order. */
  updates: ArpTarget[][];
  stopped: boolean;
  /** Makes the responder fail, as a broken packet socket would. */
  fail(error: Error): void;
}

export interface FakeKernel extends NetworkKernel {
  links(): Link[];
  link(name: string): Link | undefined;
  addBridge(name: string): Link;
  /** A port of `bridge` (a VM tap, an uplink…), up. */
  addPort(bridge: string, name: string): Link;
  /** Deletes a link the way the kernel does (a veth's peer goes too; a bridge frees its ports). */
  deleteLink(name: string): void;
  /** Deletes bridge `name` and creates it again: same name, new index, no ports. */
  replaceBridge(name: string): Link;
  /** Reports a link event (mutators do this themselves). */
  notify(): void;
  /** Resolves when the watcher has handled every event and waits for the next. */
  idle(): Promise<void>;
  /**
   * Called at the start of every step with what it acts on; throw to fail the step. The
   * interception steps await a returned promise, as a slow kernel would make them wait; the
   * others are synchronous and ignore it.
   */
  beforeStep?: (step: Step, subject: string) => void | Promise<void>;
  /** Every step taken, as "step subject", in order. */
  journal: string[];
  responders: FakeResponder[];
  /** Whether the handle's link events were closed. */
  eventsClosed: boolean;
  closed: boolean;
}

export function createFakeKernel(): FakeKernel {
  const links = new Map<number, Link & { peer?: number }>();
  const addresses: Ipv4Address[] = [];
  let nextIndex = 1;
  let macSerial = 0;
  let pending = false;
  let waiting: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let idleWaiters: (() => void)[] = [];

  const newMac = (first: number) => {
    macSerial++;
    return [first, 0, 0, 0, macSerial >> 8, macSerial & 0xff]
      .map((byte) => byte.toString(16).padStart(2, "0")).join(":");
  };
  const create = (name: string, kind: string, master = 0): Link & { peer?: number } => {
    const link = {
      index: nextIndex++,
      name,
      kind,
      master,
      mac: newMac(0x02),
      flags: 1,
      up: true,
      operstate: "up",
      mtu: 1500,
      ipv4Conf: [],
    };
    links.set(link.index, link);
    return link;
  };
  const byName = (name: string) => [...links.values()].find((link) => link.name === name);
  const snapshot = (link: Link & { peer?: number }): Link => {
    const { peer: _peer, ...plain } = link;
    return { ...plain, ipv4Conf: [...plain.ipv4Conf] };
  };
  const release = (index: number) => {
    links.delete(index);
    for (let i = addresses.length - 1; i >= 0; i--) {
      if (addresses[i].index === index) addresses.splice(i, 1);
    }
    for (const link of links.values()) if (link.master === index) link.master = 0;
  };

  const wakeUp = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const resolve = waiting;
    waiting = undefined;
    resolve?.();
  };
  const settleIdle = () => {
    if (!waiting || pending) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const fake: FakeKernel = {
    journal: [],
    responders: [],
    eventsClosed: false,
    closed: false,

    links: () => [...links.values()].map(snapshot),
    link(name) {
      const link = byName(name);
      return link && snapshot(link);
    },
    addBridge(name) {
      const bridge = create(name, "bridge");
      fake.notify();
      return snapshot(bridge);
    },
    addPort(bridge, name) {
      const master = byName(bridge);
      if (!master) throw new Error(`no bridge ${bridge}`);
      const port = create(name, "tun", master.index);
      fake.notify();
      return snapshot(port);
    },
    deleteLink(name) {
      const link = byName(name);
      if (!link) throw new Error(`no interface ${name}`);
      release(link.index);
      if (link.peer !== undefined) release(link.peer);
      fake.notify();
    },
    replaceBridge(name) {
      const old = byName(name);
      if (old) release(old.index);
      return fake.addBridge(name);
    },
    notify() {
      pending = true;
      wakeUp();
    },
    idle() {
      return new Promise((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      });
    },

    listLinks() {
      step("listLinks", "");
      return fake.links();
    },
    listIpv4Addresses() {
      step("listIpv4Addresses", "");
      return addresses.map((address) => ({ ...address }));
    },
    attachToBridge(bridge: Link, _log: Logger, options: { previousMac?: string }): Attachment {
      step("attachToBridge", bridge.name);
      const names = vethNames(bridge.name);
      let sidecar = byName(names.sidecar);
      let bridgeSide = byName(names.bridgeSide);
      const reused = sidecar?.kind === "veth" && bridgeSide?.kind === "veth";
      if (!reused) {
        for (const stray of [sidecar, bridgeSide]) if (stray) release(stray.index);
        sidecar = create(names.sidecar, "veth");
        bridgeSide = create(names.bridgeSide, "veth");
        sidecar.peer = bridgeSide.index;
        bridgeSide.peer = sidecar.index;
        bridgeSide.mac = newMac(0xfe);
        if (options.previousMac) sidecar.mac = options.previousMac;
      }
      const s = sidecar!;
      const b = bridgeSide!;
      b.master = bridge.index;
      b.up = s.up = true;
      if (!addresses.some((a) => a.index === s.index && a.address === METADATA_ADDRESS)) {
        addresses.push({ index: s.index, address: METADATA_ADDRESS, prefix: 32 });
      }
      return {
        bridge: bridge.name,
        bridgeIndex: bridge.index,
        sidecar: { name: s.name, index: s.index, mac: s.mac },
        bridgeSide: { name: b.name, index: b.index, mac: b.mac },
        reused,
      };
    },
    async installIntercept(context: InterceptContext) {
      await step("installIntercept", context.bridge);
    },
    async removeIntercept(context: InterceptContext) {
      await step("removeIntercept", context.bridge);
    },
    startArpResponder(_address: string, _logLevel: LogLevel): ArpResponder {
      step("startArpResponder", String(fake.responders.length + 1));
      let fail = (_error: Error) => {};
      const failed = new Promise<never>((_, reject) => (fail = reject));
      failed.catch(() => {});
      const responder: FakeResponder = {
        updates: [],
        stopped: false,
        failed,
        fail: (error) => fail(error),
        update(targets) {
          step("updateResponder", targets.map((target) => target.bridge).join(","));
          responder.updates.push(structuredClone(targets));
        },
        stop() {
          responder.stopped = true;
          return Promise.resolve();
        },
      };
      fake.responders.push(responder);
      return responder;
    },
    watchLinkEvents(): LinkEvents {
      return {
        next(timeoutMs) {
          if (pending) {
            pending = false;
            return Promise.resolve();
          }
          return new Promise((resolve) => {
            waiting = resolve;
            timer = setTimeout(wakeUp, timeoutMs);
            settleIdle();
          });
        },
        wake: () => fake.notify(),
        close: () => {
          fake.eventsClosed = true;
        },
      };
    },
    close() {
      fake.closed = true;
    },
  };

  /** Records the step and runs `beforeStep`; the interception steps await what it returns. */
  function step(name: Step, subject: string): void | Promise<void> {
    fake.journal.push(subject ? `${name} ${subject}` : name);
    return fake.beforeStep?.(name, subject);
  }

  return fake;
}
