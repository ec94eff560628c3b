/**
 * Layer-2 interception for KubeVirt's bridge binding: the guest owns the pod IP, routes
 * 169.254.169.254 through the cluster gateway, and without this its metadata requests
 * would leave the pod (on a cloud node, to the node's own metadata service).
 *
 * - bridge_intercept_ruleset.ts: a `bridge` nftables table that re-addresses the guest's frames
 *   for 169.254.169.254 to the sidecar veth and drops any copy headed elsewhere;
 * - bridge_intercept_routing.ts: a policy rule and table that send the replies back out of the
 *   sidecar veth (the guest's address is also local in the pod).
 *
 * Least privilege: both go through netlink (NETLINK_NETFILTER, NETLINK_ROUTE) and need
 * only CAP_NET_ADMIN in the pod's network namespace. Nothing is written to /proc/sys, no
 * kernel module or host-wide setting is involved (no br_netfilter, no ebtables), and the
 * VM's own interfaces, bridge ports and the pod's other nftables tables are left alone:
 * the sidecar owns exactly one table (`bridge kubevirt-imds`), one policy rule and one
 * routing table (169254). tc could not do it here either (no flower/pedit), and a static
 * FDB entry alone cannot redirect frames addressed to the gateway's MAC.
 *
 * Fail-closed: the table outlives the process. When the sidecar restarts or stops, guest
 * frames for 169.254.169.254 still go to the sidecar veth (answered by a reset) or are
 * dropped; they never leave through the uplink. The table goes with the pod.
 *
 * Call `install` (of createBridgeIntercept's handle) after every (re)attachment and again on
 * later link events while the bridge exists: KubeVirt creates the placeholder holding the
 * guest's address after the bridge, and a repeated call with nothing new is cheap.
 */

import { METADATA_ADDRESS } from "../../shared/contract.ts";
import type { Logger } from "../../shared/log.ts";
import { closeNetlink, NETLINK_NETFILTER, openNetlink } from "../kernel/netlink.ts";
import { commit } from "../kernel/nftables.ts";
import { batchShape, readTableShape, rulesetGeneration } from "../kernel/nftables_state.ts";
import {
  INTERCEPT_TABLE,
  interceptBatch,
  type InterceptTarget,
  removalBatch,
} from "./bridge_intercept_ruleset.ts";
import {
  addReplyRoute,
  deleteReplyRoute,
  ensureReplyRule,
  removeReplyRule,
  REPLY_TABLE,
  replyRoute,
} from "./bridge_intercept_routing.ts";
import {
  AF_INET,
  AF_INET6,
  type Ipv4Address,
  type Link,
  listIpv4Addresses,
  listIpv6Addresses,
  listLinks,
  type Route,
} from "../kernel/rtnetlink.ts";
import {
  isKubevirtDhcpServerAddress,
  isUplinkName,
  isVmPortName,
  kubevirtTapName,
  placeholderNames,
} from "./interface_names.ts";

export interface InterceptContext {
  bridge: string;
  bridgeIndex: number;
  /** The sidecar veth end that is a port of the bridge (imdb-…). */
  vethBridgeSide: string;
  /** The sidecar veth end carrying 169.254.169.254 (imds-…). */
  vethSidecarSide: string;
  vethSidecarIndex: number;
  /** MAC of the sidecar end: where guest frames for the metadata address are sent. */
  vethMac: string;
  log: Logger;
}

export interface InterceptStatus {
  bridge: string;
  /**
   * True for bridge binding on a network with IP addresses: the pod interface is a port of
   * the bridge and the guest gets the pod's address from KubeVirt's DHCP server.
   */
  bridgeBinding: boolean;
  vmPorts: string[];
  /** Guest addresses replies are routed to through the sidecar veth. */
  guestAddresses: string[];
  /** Whether this call changed anything in the kernel. */
  changed: boolean;
}

/** What the interception reads of a link. */
export type PortInfo = Pick<Link, "index" | "name" | "master">;

/** What a bridge looks like to the interception, from a link and address listing. */
export interface BridgeView {
  vmPorts: string[];
  /** Ports named `<name>-nic`: the pod interface, moved into the bridge. */
  uplinks: string[];
  /**
   * The bridge carries KubeVirt's DHCP server address (169.254.75.1N/32): the guest will own
   * the pod's address. Networks without IPAM have an uplink but no such address, no
   * placeholder and link-local guests.
   */
  servesDhcp: boolean;
  guestAddresses: string[];
}

function isHostAddress(address: string): boolean {
  if (address.includes(":")) return address !== "::1" && !/^fe[89ab]/i.test(address);
  return !address.startsWith("127.") && !address.startsWith("169.254.");
}

/** The pod's IPv4 and IPv6 addresses (a guest of a dual-stack or IPv6 network owns both). */
function podAddresses(): Ipv4Address[] {
  return [...listIpv4Addresses(), ...listIpv6Addresses()];
}

/**
 * VM ports: KubeVirt's tap name for the bridge plus any `tap*` port it has. Uplinks: ports
 * named `<name>-nic` (bridge binding moved the pod interface there). Guest addresses: the
 * IPv4 and (not link-local) IPv6 addresses KubeVirt left on the placeholder, named `<name>` or
 * `pod<name>`.
 */
export function viewBridge(
  bridge: PortInfo,
  links: PortInfo[],
  addresses: Pick<Ipv4Address, "index" | "address">[],
  sidecarPort: string,
): BridgeView {
  const ports = links.filter((link) => link.master === bridge.index && link.name !== sidecarPort);
  const tap = kubevirtTapName(bridge.name);
  const vmPorts = [
    ...new Set([
      ...(tap ? [tap] : []),
      ...ports.filter((port) => isVmPortName(port.name)).map((port) => port.name),
    ]),
  ];
  const uplinks = ports.filter((port) => isUplinkName(port.name)).map((port) => port.name);
  const guestAddresses: string[] = [];
  for (const uplink of uplinks) {
    const names = placeholderNames(uplink);
    const placeholder = links.find((link) => names.includes(link.name) && link.master === 0);
    if (!placeholder) continue;
    for (const address of addresses) {
      if (address.index === placeholder.index && isHostAddress(address.address)) {
        guestAddresses.push(address.address);
      }
    }
  }
  const servesDhcp = addresses.some((address) =>
    address.index === bridge.index && isKubevirtDhcpServerAddress(address.address)
  );
  return {
    vmPorts,
    uplinks,
    servesDhcp,
    guestAddresses: [...new Set(guestAddresses)].sort(),
  };
}

/**
 * Bridge binding on a network with addresses: the guest owns the pod's address, so replies
 * need their own route. Not for masquerade (no uplink port) nor networks without IPAM
 * (uplink, but no DHCP server address and no placeholder: the guest is link-local).
 */
export function isBridgeBindingWithAddresses(view: BridgeView): boolean {
  return view.uplinks.length > 0 && (view.servesDhcp || view.guestAddresses.length > 0);
}

interface Installed {
  target: InterceptTarget;
  routes: Route[];
  /** Bridge binding whose guest address is not known yet (logged once). */
  waitingForAddress: boolean;
}

/** The interception of one sidecar process: what it installed, and where. */
export interface BridgeIntercept {
  /**
   * Intercepts guest traffic for 169.254.169.254 on `ctx.bridge` (idempotent). The table is
   * written (atomically) only when what it should hold changed, or when the kernel's copy was
   * deleted or altered by someone else since — each call checks that cheaply, without a commit
   * (a commit costs milliseconds of a blocked event loop) — and always on the first call.
   */
  install(ctx: InterceptContext): InterceptStatus;
  /**
   * Stops intercepting on `ctx.bridge` (bridge gone, or interception turned off). Never throws
   * because something is already gone. Not meant for SIGTERM: leaving the table in place keeps
   * the guest's metadata traffic inside the pod while the sidecar restarts.
   */
  remove(ctx: InterceptContext): void;
}

/** `ctx`'s bridge as the kernel shows it now, with its view; undefined when it is gone. */
function currentBridge(ctx: InterceptContext): { bridge: Link; view: BridgeView } | undefined {
  const links = listLinks();
  const bridge = links.find((link) => link.index === ctx.bridgeIndex && link.name === ctx.bridge);
  if (!bridge) return undefined;
  return { bridge, view: viewBridge(bridge, links, podAddresses(), ctx.vethBridgeSide) };
}

/** The reply routes `ctx` implies now (for removing what an earlier run installed). */
function currentRoutes(ctx: InterceptContext): Route[] {
  return (currentBridge(ctx)?.view.guestAddresses ?? [])
    .map((guest) => replyRoute(guest, ctx.vethSidecarIndex));
}

/**
 * A fresh interception state. The sidecar keeps one for its lifetime; its first install
 * replaces whatever table an earlier run left.
 */
export function createBridgeIntercept(): BridgeIntercept {
  /** Bridges intercepted through this handle, by name. */
  const installed = new Map<string, Installed>();
  /** The targets last written to the kernel ("" before the first write). */
  let appliedTable = "";
  /**
   * The nftables ruleset generation at which the table was last found as written; undefined
   * until checked after a write. The generation moves with every commit in the namespace, so
   * while it stays put the table cannot have changed.
   */
  let checkedGeneration: number | undefined;

  /**
   * Whether the table written last is no longer what the kernel holds (deleted, flushed or
   * trimmed by someone else). One netlink request while nothing changed in nftables; a few
   * dumps of the table otherwise. Never a commit.
   */
  const tableAltered = (targets: InterceptTarget[]): boolean => {
    const sock = openNetlink(NETLINK_NETFILTER);
    try {
      const generation = rulesetGeneration(sock);
      if (generation === checkedGeneration) return false;
      const now = readTableShape(sock, INTERCEPT_TABLE);
      const expected = batchShape(interceptBatch(targets), INTERCEPT_TABLE);
      if (
        !now || now.chains !== expected.chains || now.rules !== expected.rules ||
        now.setElements !== expected.setElements
      ) {
        return true;
      }
      checkedGeneration = generation;
      return false;
    } finally {
      closeNetlink(sock);
    }
  };

  /**
   * Writes the nftables table for every installed bridge when its content changed, or, with
   * `verify`, when the kernel's copy was altered behind this handle's back. True when written.
   */
  const applyTable = (verify: boolean, log?: Logger): boolean => {
    const targets = [...installed.values()].map((entry) => entry.target);
    const key = JSON.stringify(targets);
    if (key === appliedTable) {
      if (!verify || targets.length === 0 || !tableAltered(targets)) return false;
      log?.warn(
        `nftables table bridge ${INTERCEPT_TABLE.table} was changed or deleted by something else; writing it again`,
        { table: `bridge ${INTERCEPT_TABLE.table}` },
      );
    }
    if (targets.length === 0) {
      commit(removalBatch(), `remove nftables table bridge ${INTERCEPT_TABLE.table}`);
    } else {
      commit(
        interceptBatch(targets),
        `install nftables table bridge ${INTERCEPT_TABLE.table}`,
      );
    }
    appliedTable = key;
    checkedGeneration = undefined;
    return true;
  };

  /** Our policy rule of each family exists exactly while some bridge-binding guest needs it. */
  const syncReplyRule = (): boolean => {
    const routes = [...installed.values()].flatMap((entry) => entry.routes);
    let changed = false;
    for (const family of [AF_INET, AF_INET6]) {
      const ipv6 = family === AF_INET6;
      const needed = routes.some((route) => route.destination.includes(":") === ipv6);
      changed = (needed ? ensureReplyRule(family) : removeReplyRule(family)) || changed;
    }
    return changed;
  };

  const syncReplyRoutesAndRule = (before: Route[], after: Route[]): boolean => {
    let changed = false;
    const key = (route: Route) => `${route.destination}@${route.device}`;
    const wanted = new Set(after.map(key));
    for (const route of before) {
      if (!wanted.has(key(route))) changed = deleteReplyRoute(route) || changed;
    }
    const had = new Set(before.map(key));
    for (const route of after) {
      addReplyRoute(route);
      if (!had.has(key(route))) changed = true;
    }
    return syncReplyRule() || changed;
  };

  const install = (ctx: InterceptContext): InterceptStatus => {
    const current = currentBridge(ctx);
    if (!current) throw new Error(`cannot intercept on bridge ${ctx.bridge}: it no longer exists`);
    const { bridge, view } = current;
    const target: InterceptTarget = {
      bridge: ctx.bridge,
      bridgeMac: bridge.mac,
      vmPorts: view.vmPorts,
      sidecarPort: ctx.vethBridgeSide,
      sidecarMac: ctx.vethMac,
    };
    const routes = view.guestAddresses.map((guest) => replyRoute(guest, ctx.vethSidecarIndex));
    const bridgeBinding = isBridgeBindingWithAddresses(view);
    const waitingForAddress = bridgeBinding && view.guestAddresses.length === 0;
    const previous = installed.get(ctx.bridge);
    installed.set(ctx.bridge, { target, routes, waitingForAddress });

    const tableChanged = applyTable(true, ctx.log);
    const ruleChanged = syncReplyRoutesAndRule(previous?.routes ?? [], routes);
    const changed = tableChanged || ruleChanged;
    const fields = {
      bridge: ctx.bridge,
      table: `bridge ${INTERCEPT_TABLE.table}`,
      routeTable: REPLY_TABLE,
      vmPorts: view.vmPorts,
      guestAddresses: view.guestAddresses,
    };
    if (changed && bridgeBinding) {
      ctx.log.info(
        `intercepting ${METADATA_ADDRESS} on bridge ${ctx.bridge} (bridge binding): the guest's ` +
          `packets for it go to ${ctx.vethSidecarSide} (${ctx.vethMac}) and never leave through ` +
          view.uplinks.join(", ") +
          (view.guestAddresses.length > 0
            ? `; replies to ${view.guestAddresses.join(", ")} leave through ${ctx.vethSidecarSide}`
            : ""),
        fields,
      );
    } else if (changed) {
      ctx.log.info(
        `guarding ${METADATA_ADDRESS} on bridge ${ctx.bridge}: frames for it from ${
          view.vmPorts.join(", ") || "VM ports"
        } reach only ${ctx.vethSidecarSide} (${ctx.vethMac})` +
          (view.uplinks.length > 0
            ? ` and never leave through ${view.uplinks.join(", ")}`
            : "; those sent to the bridge itself are routed by the pod as before"),
        fields,
      );
    }
    if (waitingForAddress && !previous?.waitingForAddress) {
      ctx.log.info(
        `bridge ${ctx.bridge} uses bridge binding but the guest's address is not known yet ` +
          `(KubeVirt has not created the placeholder interface); will retry on the next change`,
        { bridge: ctx.bridge },
      );
    }
    return {
      bridge: ctx.bridge,
      bridgeBinding,
      vmPorts: view.vmPorts,
      guestAddresses: view.guestAddresses,
      changed,
    };
  };

  const remove = (ctx: InterceptContext): void => {
    const entry = installed.get(ctx.bridge);
    installed.delete(ctx.bridge);
    try {
      applyTable(false);
      for (const route of entry?.routes ?? currentRoutes(ctx)) deleteReplyRoute(route);
      syncReplyRule();
    } catch (error) {
      ctx.log.warn(`could not fully remove the interception on bridge ${ctx.bridge}`, {
        bridge: ctx.bridge,
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    ctx.log.info(`stopped intercepting ${METADATA_ADDRESS} on bridge ${ctx.bridge}`, {
      bridge: ctx.bridge,
    });
  };

  return { install, remove };
}
