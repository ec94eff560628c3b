/**
 * The reconcile loop: keeps the sidecar's presence on every VM bridge in line with what the
 * namespace holds now. For each bridge the watcher reports (bridge_watcher.ts): a veth pair
 * (attach.ts), service by the one ARP responder thread through the bridge's VM ports
 * (arp_responder.ts), and, when bridge interception is on, layer-2 interception
 * (bridge_intercept.ts). A bridge that disappears is forgotten (its interception removed); one
 * that comes back, or is replaced under the same name, is attached again; an attachment
 * changed behind the sidecar's back is repaired with the MAC guests already cached.
 *
 * Every kernel operation goes through a NetworkKernel handle (network_kernel.ts), so the loop
 * runs against an in-memory kernel in tests. After `stop()` no further step runs: the step
 * under way finishes, then the loop returns.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { Logger, LogLevel } from "../../shared/log.ts";
import type { NetworkConfig } from "../config.ts";
import type { ArpResponder, ArpTarget } from "./arp_responder.ts";
import { type Attachment, attachmentIntact } from "./attach.ts";
import type { InterceptContext } from "./bridge_intercept.ts";
import { type BridgeWatcher, watchBridges } from "./bridge_watcher.ts";
import { isVmPortName } from "./interface_names.ts";
import type { NetworkKernel } from "./network_kernel.ts";
import type { Link } from "../kernel/rtnetlink.ts";

export interface BridgeState {
  attachment: Attachment;
  intercepted: boolean;
  /** The last interception failure, to log each distinct failure once. */
  interceptError?: string;
  /** VM ports the ARP responder was last told about, for the log. */
  arpPorts?: string;
}

export interface NetworkRuntime {
  /** Bridges currently served, by name. */
  bridges: Map<string, BridgeState>;
  /** Ends the loop (after the step under way) and the ARP responder; leaves the kernel as is. */
  stop(): Promise<void>;
}

export interface NetworkOptions {
  network:
    & Pick<NetworkConfig, "bridgeNames" | "arpResponder" | "bridgeIntercept">
    & Partial<Pick<NetworkConfig, "guestRouteIdleMs">>;
  logLevel: LogLevel;
  log: Logger;
  kernel: NetworkKernel;
  /** How often the bridges are listed again without any event (default 5 s). */
  recheckMs?: number;
}

/** The VM ports of `bridge`: where the VM's frames enter it (KubeVirt: tap0, tap1, tap<hash>). */
export function vmPorts(bridge: Link, links: Link[]): Link[] {
  return links.filter((link) => link.master === bridge.index && isVmPortName(link.name));
}

/** Starts the bridge watcher and everything it sets up per bridge. */
export function startNetwork(options: NetworkOptions): NetworkRuntime {
  const { network, log, kernel } = options;
  const bridges = new Map<string, BridgeState>();
  let waitingLogged = false;
  let responder: ArpResponder | undefined;
  let stopped = false;

  const startResponder = (): void => {
    const started = kernel.startArpResponder(
      METADATA_ADDRESS,
      options.logLevel,
      network.guestRouteIdleMs === undefined
        ? undefined
        : { guestRouteIdleMs: network.guestRouteIdleMs },
    );
    responder = started;
    started.failed.catch((error) => {
      if (responder !== started || stopped) return;
      log.error("the ARP responder failed; restarting it", { error });
      responder = undefined;
      for (const state of bridges.values()) state.arpPorts = undefined;
      started.stop().then(() => {
        if (stopped) return;
        try {
          startResponder();
          watcher.trigger();
        } catch (restartError) {
          log.error("could not restart the ARP responder", { error: restartError });
        }
      });
    });
  };

  const interceptContext = (state: BridgeState): InterceptContext => ({
    bridge: state.attachment.bridge,
    bridgeIndex: state.attachment.bridgeIndex,
    vethBridgeSide: state.attachment.bridgeSide.name,
    vethSidecarSide: state.attachment.sidecar.name,
    vethSidecarIndex: state.attachment.sidecar.index,
    vethMac: state.attachment.sidecar.mac,
    log: log.with({ bridge: state.attachment.bridge }),
  });

  const attach = (bridge: Link, previous: BridgeState | undefined): BridgeState => {
    const attachment = kernel.attachToBridge(bridge, log, {
      previousMac: previous?.attachment.sidecar.mac,
    });
    log.info(
      `attached veth ${attachment.sidecar.name} to ${bridge.name} (bridge port ${attachment.bridgeSide.name})`,
      { bridge: bridge.name, mac: attachment.sidecar.mac, reused: attachment.reused },
    );
    const state: BridgeState = { attachment, intercepted: false };
    bridges.set(bridge.name, state);
    return state;
  };

  const intercept = async (state: BridgeState): Promise<void> => {
    try {
      await kernel.installIntercept(interceptContext(state));
      state.intercepted = true;
      state.interceptError = undefined;
    } catch (error) {
      const text = String(error);
      if (text !== state.interceptError) {
        log.error(`could not intercept ${state.attachment.bridge}; will retry`, {
          bridge: state.attachment.bridge,
          error,
        });
      }
      state.interceptError = text;
    }
  };

  /** Tells the ARP responder which bridges to serve and through which VM ports. */
  const updateResponder = (present: Link[], links: Link[]): void => {
    if (!responder) return;
    const targets: ArpTarget[] = [];
    for (const bridge of present) {
      const state = bridges.get(bridge.name);
      if (!state) continue;
      const ports = vmPorts(bridge, links);
      const { sidecar } = state.attachment;
      targets.push({
        bridge: bridge.name,
        sidecarIndex: sidecar.index,
        sidecarName: sidecar.name,
        bridgeSideIndex: state.attachment.bridgeSide.index,
        mac: sidecar.mac,
        address: METADATA_ADDRESS,
        address6: METADATA_ADDRESS_V6,
        vmPorts: ports.map((port) => port.index),
        otherPorts: links
          .filter((link) =>
            link.master === bridge.index && !ports.includes(link) &&
            link.index !== state.attachment.bridgeSide.index
          )
          .map((link) => ({ index: link.index, name: link.name })),
        learnRoutes: true,
      });
      const names = ports.map((port) => port.name).join(", ");
      if (state.arpPorts !== names) {
        state.arpPorts = names;
        const msg = names
          ? `ARP responder listening on ${bridge.name} for ${METADATA_ADDRESS}, answering VM port${
            ports.length > 1 ? "s" : ""
          } ${names}`
          : `ARP responder listening on ${bridge.name} for ${METADATA_ADDRESS}; the VM is not plugged in yet`;
        log.info(msg, {
          bridge: bridge.name,
          interface: sidecar.name,
          mac: sidecar.mac,
          vmPorts: names || "none yet (the VM is not plugged in)",
        });
      }
    }
    responder.update(targets);
  };

  const reconcile = async (present: Link[]): Promise<void> => {
    if (stopped) return;
    const addresses = kernel.listIpv4Addresses();
    if (stopped) return;
    const links = kernel.listLinks();
    if (stopped) return;
    let changed = false;
    for (const bridge of present) {
      if (stopped) return;
      const state = bridges.get(bridge.name);
      if (!state) {
        log.info(`found bridge ${bridge.name}`, { bridge: bridge.name, mac: bridge.mac });
        attach(bridge, undefined);
        changed = true;
      } else if (!attachmentIntact(state.attachment, bridge, links, addresses)) {
        log.warn(`the attachment to ${bridge.name} was changed or removed; repairing it`, {
          bridge: bridge.name,
        });
        attach(bridge, state);
        changed = true;
      }
    }
    for (const [name, state] of bridges) {
      if (stopped) return;
      if (present.some((bridge) => bridge.name === name)) continue;
      log.warn(`bridge ${name} is gone; will attach again if it comes back`, { bridge: name });
      if (state.intercepted) await kernel.removeIntercept(interceptContext(state));
      bridges.delete(name);
    }
    if (stopped) return;
    // The responder first: a guest may be asking already. Then the (slower) interception.
    updateResponder(present, changed ? kernel.listLinks() : links);
    if (network.bridgeIntercept) {
      for (const state of bridges.values()) {
        if (stopped) return;
        await intercept(state);
      }
    }
    if (bridges.size === 0 && !waitingLogged) {
      waitingLogged = true;
      log.info("waiting for VM bridge…", {
        bridges: network.bridgeNames.length > 0 ? network.bridgeNames : "k6t-*",
      });
    }
    if (bridges.size > 0) waitingLogged = false;
  };

  if (network.arpResponder) startResponder();
  let watcher: BridgeWatcher;
  try {
    watcher = watchBridges({
      names: network.bridgeNames,
      log,
      reconcile,
      listLinks: () => kernel.listLinks(),
      events: kernel.watchLinkEvents(),
      recheckMs: options.recheckMs,
    });
  } catch (error) {
    stopped = true;
    responder?.stop();
    throw error;
  }
  return {
    bridges,
    stop: async () => {
      stopped = true;
      await watcher.stop();
      await responder?.stop();
    },
  };
}
