/**
 * Watches the network namespace for the VM's bridges. KubeVirt creates them after the pod's
 * containers start, and may re-create them, so the watcher calls `reconcile` with the current
 * bridges at start, after every link or IPv4 address change the kernel reports (rtnetlink
 * RTNLGRP_LINK and RTNLGRP_IPV4_IFADDR events), and every `recheckMs` as a safety net, one
 * call at a time.
 */

import type { Logger } from "../../shared/log.ts";
import { isVmBridgeName } from "./interface_names.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, errno, libc, POLLIN, syscallError } from "../kernel/libc.ts";
import { closeNetlink, receiveEvents } from "../kernel/netlink.ts";
import { type Link, listLinks, openLinkEvents } from "../kernel/rtnetlink.ts";

export interface BridgeWatcherOptions {
  /** Bridge names to use; empty means every k6t-* bridge. */
  names: string[];
  log: Logger;
  /** Brings the sidecar in line with the bridges present now. Errors are logged, then retried. */
  reconcile: (bridges: Link[]) => Promise<void>;
  recheckMs?: number;
}

export interface BridgeWatcher {
  /** Ask for a reconcile soon (e.g. an ARP responder failed). */
  trigger(): void;
  stop(): Promise<void>;
  /** Settles when the watcher has stopped. */
  done: Promise<void>;
}

/** The bridges to serve among `links`: the named ones, or every k6t-* bridge. */
export function selectBridges(links: Link[], names: string[]): Link[] {
  return links.filter((link) =>
    link.kind === "bridge" &&
    (names.length > 0 ? names.includes(link.name) : isVmBridgeName(link.name))
  );
}

export function watchBridges(options: BridgeWatcherOptions): BridgeWatcher {
  const { log } = options;
  const events = openLinkEvents();
  const wake = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const code = errno();
    closeNetlink(events);
    throw syscallError("eventfd", code);
  }
  const pollfds = new Uint8Array(16);
  const view = new DataView(pollfds.buffer);
  view.setInt32(0, events.fd, true);
  view.setInt16(4, POLLIN, true);
  view.setInt32(8, wake, true);
  view.setInt16(12, POLLIN, true);
  const counter = new Uint8Array(8);
  let stopping = false;
  let failures = 0;

  const reconcileNow = async (): Promise<void> => {
    try {
      await options.reconcile(selectBridges(listLinks(), options.names));
      failures = 0;
    } catch (error) {
      failures++;
      // Keep going: the next event or recheck retries. Avoid flooding the log on a stuck error.
      if (failures <= 3 || failures % 60 === 0) {
        log.error("could not set up the VM network attachment; will retry", { error, failures });
      }
    }
  };

  const loop = async (): Promise<void> => {
    try {
      await reconcileNow();
      while (!stopping) {
        const timeout = failures > 0 ? 1000 : options.recheckMs ?? 5000;
        await libc().pollAsync(pollfds, 2n, timeout);
        if (stopping) return;
        if (view.getInt16(6, true) & POLLIN) receiveEvents(events); // contents do not matter
        if (view.getInt16(14, true) & POLLIN) libc().read(wake, counter, 8n);
        await reconcileNow();
      }
    } finally {
      closeNetlink(events);
      libc().close(wake);
    }
  };

  const done = loop();
  const poke = () => {
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(wake, one, 8n);
  };
  return {
    trigger: () => {
      if (!stopping) poke();
    },
    stop: async () => {
      if (!stopping) {
        stopping = true;
        poke();
      }
      await done;
    },
    done,
  };
}
