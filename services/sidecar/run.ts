/**
 * The `run` subcommand: make 169.254.169.254 reachable for the VM inside the virt-launcher pod's
 * network namespace, then serve the metadata API on it (never on 0.0.0.0 or the pod IP).
 *
 * 1. 169.254.169.254/32 on loopback, always: the server must bind the address before any
 *    bridge exists, and passt's sockets reach it there (IMDS_PASST only adds a log line).
 * 2. The ingress guard (datapath/ingress_guard.ts): only the VM and the pod itself reach the address.
 * 3. The HTTP server on 169.254.169.254:80.
 * 4. A watcher for the VM's bridges: for each one a veth pair (attach.ts), service by the one
 *    ARP responder thread (arp_responder.ts) through the bridge's tap ports, and, when
 *    IMDS_BRIDGE_INTERCEPT is on, layer-2 interception (intercept.ts).
 * SIGTERM/SIGINT stop everything within a second. The veth pairs and interception stay in place,
 * so a restarted sidecar reuses them (guests keep their cached MAC, and bridge-binding guests'
 * packets to 169.254.169.254 never leave the pod meanwhile).
 */

import { METADATA_ADDRESS } from "../shared/contract.ts";
import type { Logger } from "../shared/log.ts";
import { type Env, processEnv } from "../shared/settings.ts";
import type { SidecarConfig } from "./config.ts";
import { type MetadataServer, startMetadataServer } from "./http/server.ts";
import { listenForStopSignal, startSubcommand } from "./subcommand.ts";
import { type ArpResponder, type ArpTarget, startArpResponder } from "./datapath/arp_responder.ts";
import {
  type Attachment,
  attachmentIntact,
  attachToBridge,
  ensureLoopbackAddress,
} from "./datapath/attach.ts";
import { type BridgeWatcher, watchBridges } from "./datapath/bridge_watcher.ts";
import {
  installIntercept,
  type InterceptContext,
  removeIntercept,
} from "./datapath/bridge_intercept.ts";
import { installIngressGuard } from "./datapath/ingress_guard.ts";
import { closeRoutingSocket, type Link, listIpv4Addresses, listLinks } from "./kernel/rtnetlink.ts";

export const EXIT_SETUP_FAILED = 1;
/** The port guests connect to. */
export const METADATA_PORT = 80;
const STOP_DEADLINE_MS = 900;

/** Layer-2 interception for bridge binding; run.ts calls these per bridge. */
export interface InterceptHooks {
  /** Idempotent; called on every reconcile while the bridge exists. */
  install(context: InterceptContext): unknown;
  /** Called when the bridge disappears; must not fail when there is nothing to remove. */
  remove(context: InterceptContext): unknown;
}

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
  stop(): Promise<void>;
}

/** The tap ports of `bridge`: where the VM's frames enter it (KubeVirt: tap0, tap1, tap<hash>). */
export function vmPorts(bridge: Link, links: Link[]): Link[] {
  return links.filter((link) => link.master === bridge.index && link.name.startsWith("tap"));
}

/** Starts the bridge watcher and everything it sets up per bridge. */
export function startNetwork(
  config: SidecarConfig,
  log: Logger,
  hooks: InterceptHooks = { install: installIntercept, remove: removeIntercept },
): NetworkRuntime {
  const bridges = new Map<string, BridgeState>();
  const { network } = config;
  let waitingLogged = false;
  let responder: ArpResponder | undefined;

  const startResponder = (): void => {
    const started = startArpResponder(METADATA_ADDRESS, config.logLevel);
    responder = started;
    started.failed.catch((error) => {
      if (responder !== started) return;
      log.error("the ARP responder failed; restarting it", { error });
      responder = undefined;
      for (const state of bridges.values()) state.arpPorts = undefined;
      started.stop().then(() => {
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
    const attachment = attachToBridge(bridge, log, {
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
      await hooks.install(interceptContext(state));
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
    const addresses = listIpv4Addresses();
    const links = listLinks();
    let changed = false;
    for (const bridge of present) {
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
      if (present.some((bridge) => bridge.name === name)) continue;
      log.warn(`bridge ${name} is gone; will attach again if it comes back`, { bridge: name });
      if (state.intercepted) await hooks.remove(interceptContext(state));
      bridges.delete(name);
    }
    // The responder first: a guest may be asking already. Then the (slower) interception.
    updateResponder(present, changed ? listLinks() : links);
    if (network.bridgeIntercept) {
      for (const state of bridges.values()) await intercept(state);
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
  const watcher: BridgeWatcher = watchBridges({ names: network.bridgeNames, log, reconcile });
  return {
    bridges,
    stop: async () => {
      await watcher.stop();
      await responder?.stop();
    },
  };
}

/** Rejects after `ms`; for bounding shutdown steps. */
function deadline(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    Deno.unrefTimer(timer);
  });
}

/** `main.ts run`: returns the exit code once SIGTERM/SIGINT has stopped everything. */
export async function run(args: string[], env: Env = processEnv): Promise<number> {
  // Before anything else, so a stop signal that arrives at any moment of the set-up (the pod
  // may be deleted right after it started) is handled like a later one: a clean stop, never
  // the default action that kills the process. The set-up below is synchronous, so a signal
  // that arrives during it is handled as soon as it is done.
  const stop = listenForStopSignal();
  const started = startSubcommand("run", args, env);
  if (typeof started === "number") return started;
  const { config, log } = started;
  if (config.listen.hostname !== METADATA_ADDRESS || config.listen.port !== METADATA_PORT) {
    log.warn(
      `run always serves on ${METADATA_ADDRESS}:${METADATA_PORT}; IMDS_LISTEN_ADDR is ignored`,
    );
  }

  let server: MetadataServer;
  let network: NetworkRuntime;
  try {
    // The address must exist before the server can bind it, whatever the binding mode.
    ensureLoopbackAddress(log);
    // Before anything listens: only the VM and the pod itself may reach the address (a
    // neighbour routing 169.254.169.254 to the pod IP must not get this VM's tokens).
    installIngressGuard(log);
    if (config.network.passt) log.info("passt guests reach the metadata address through loopback");
    server = startMetadataServer(config, log, { hostname: METADATA_ADDRESS, port: METADATA_PORT });
    network = startNetwork(config, log);
  } catch (error) {
    log.error(
      "could not set up the metadata network (the container needs NET_ADMIN, NET_RAW and NET_BIND_SERVICE)",
      {
        error,
      },
    );
    closeRoutingSocket();
    return EXIT_SETUP_FAILED;
  }

  const signal = await stop.signal;
  log.info("stopping", { signal });
  const stopped = Promise.all([network.stop(), server.shutdown()]);
  try {
    await Promise.race([stopped, deadline(STOP_DEADLINE_MS, "stopping")]);
  } catch (error) {
    log.warn("stopping forcefully", { error });
  }
  closeRoutingSocket();
  log.info("stopped");
  // Exit explicitly: a client holding a connection open must not keep the process alive.
  Deno.exit(0);
}
