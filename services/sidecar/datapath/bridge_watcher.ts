/**
 * Watches the network namespace for the VM's bridges. KubeVirt creates them after the pod's
 * containers start, and may re-create them, so the watcher calls `reconcile` with the current
 * bridges at start, after every link or IPv4 address change (`events`), and every `recheckMs`
 * as a safety net, one call at a time.
 */

import type { Logger } from "../../shared/log.ts";
import { isVmBridgeName } from "./interface_names.ts";
import type { LinkEvents } from "../kernel/link_events.ts";
import type { Link } from "../kernel/rtnetlink.ts";

export interface BridgeWatcherOptions {
  /** Bridge names to use; empty means every k6t-* bridge. */
  names: string[];
  log: Logger;
  /** Brings the sidecar in line with the bridges present now. Errors are logged, then retried. */
  reconcile: (bridges: Link[]) => Promise<void>;
  /** The namespace's interfaces now. */
  listLinks: () => Link[];
  /** Link and address changes; closed when the watcher stops. */
  events: LinkEvents;
  recheckMs?: number;
}

export interface BridgeWatcher {
  /** Ask for a reconcile soon (e.g. an ARP responder failed). */
  trigger(): void;
  /** Stops after the reconcile under way, if any; no reconcile starts after this is called. */
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

/** After a failed reconcile, the next one comes this soon whatever happens meanwhile. */
const RETRY_MS = 1000;

export function watchBridges(options: BridgeWatcherOptions): BridgeWatcher {
  const { log, events } = options;
  let stopping = false;
  let failures = 0;

  const reconcileNow = async (): Promise<void> => {
    try {
      await options.reconcile(selectBridges(options.listLinks(), options.names));
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
        await events.next(failures > 0 ? RETRY_MS : options.recheckMs ?? 5000);
        if (stopping) return;
        await reconcileNow();
      }
    } finally {
      events.close();
    }
  };

  const done = loop();
  return {
    trigger: () => {
      if (!stopping) events.wake();
    },
    stop: async () => {
      if (!stopping) {
        stopping = true;
        events.wake();
      }
      await done;
    },
    done,
  };
}
