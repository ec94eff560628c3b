/**
 * Everything the reconcile loop (reconcile.ts) asks of the kernel, behind one handle, the way
 * a netlink library hands out a handle per namespace: the loop never reaches for module state,
 * and tests give it an in-memory kernel instead (testing/fake_kernel.ts).
 *
 * The real handle owns the sidecar's interception state (which bridges it intercepts, the
 * nftables table it last wrote) and releases the shared rtnetlink socket on `close`.
 */

import type { Logger, LogLevel } from "../../shared/log.ts";
import { type ArpResponder, startArpResponder } from "./arp_responder.ts";
import type { LearningSettings } from "./arp_worker.ts";
import { type Attachment, attachToBridge } from "./attach.ts";
import { createBridgeIntercept, type InterceptContext } from "./bridge_intercept.ts";
import { type LinkEvents, watchLinkEvents } from "../kernel/link_events.ts";
import {
  closeRoutingSocket,
  type Ipv4Address,
  type Link,
  listIpv4Addresses,
  listLinks,
} from "../kernel/rtnetlink.ts";

export interface NetworkKernel {
  listLinks(): Link[];
  listIpv4Addresses(): Ipv4Address[];
  /** Creates, reuses or repairs the veth pair on `bridge` (see attach.ts). */
  attachToBridge(bridge: Link, log: Logger, options: { previousMac?: string }): Attachment;
  /** Layer-2 interception for bridge binding; idempotent, called on every reconcile. */
  installIntercept(context: InterceptContext): unknown;
  /** Called when the bridge disappears; must not fail when there is nothing to remove. */
  removeIntercept(context: InterceptContext): unknown;
  /** Opens the responder's packet socket and starts its thread; throws when it cannot. */
  startArpResponder(
    address: string,
    logLevel: LogLevel,
    learning?: LearningSettings,
  ): ArpResponder;
  /** Link and IPv4 address changes, for the bridge watcher. */
  watchLinkEvents(): LinkEvents;
  /** Releases what the handle holds open. */
  close(): void;
}

/**
 * The handle on the current network namespace. A listing the kernel reports as interrupted (the
 * namespace changed while it was read, as when KubeVirt rewires the pod) is read again; `log`
 * gets one line for each such listing.
 */
export function openNetworkKernel(log: Logger): NetworkKernel {
  const intercept = createBridgeIntercept();
  const retried = (what: string) => (interruptions: number) =>
    log.info(
      `${what} changed while the kernel listed them; listed again (${interruptions} interrupted ` +
        `listing${interruptions > 1 ? "s" : ""} discarded)`,
      { interruptions },
    );
  const linksRetried = retried("the network interfaces");
  const addressesRetried = retried("the IPv4 addresses");
  return {
    listLinks: () => listLinks({ onRetried: linksRetried }),
    listIpv4Addresses: () => listIpv4Addresses({ onRetried: addressesRetried }),
    attachToBridge,
    installIntercept: intercept.install,
    removeIntercept: intercept.remove,
    startArpResponder,
    watchLinkEvents,
    close: closeRoutingSocket,
  };
}
