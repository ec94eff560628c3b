/**
 * The nftables table that keeps a bridge-binding guest's metadata traffic inside the pod.
 *
 * With bridge binding the guest owns the pod IP and routes 169.254.169.254 through the
 * cluster gateway, so its frames carry the GATEWAY's MAC and the bridge would forward them
 * out of the pod's uplink (`eth0-nic`), where on a cloud node they reach the node's own
 * metadata service. One `bridge` family table, owned by the sidecar and rewritten as a
 * whole in one atomic batch, changes that:
 *
 *  prerouting  frames from a VM port for 169.254.169.254 get the sidecar veth's MAC as
 *              destination (unless addressed to the bridge itself: masquerade guests
 *              route through the bridge and the pod delivers those locally already);
 *  forward     from a VM port, IPv4 and ARP for 169.254.169.254 may only go to a sidecar
 *              port, even when the bridge floods; a sidecar port exchanges frames with
 *              VM ports only, and receives only frames for its own MAC or ARP for the
 *              metadata address (the uplink port has learning off, so all guest traffic
 *              to the gateway is flooded and would otherwise be copied to the sidecar);
 *  output      the pod's own stack never sends into a sidecar port through a bridge;
 *  input       nothing from a sidecar port reaches the pod's stack through a bridge (so
 *              the pod never answers the sidecar's ARP for the guest's address).
 *
 * Rules name ports rather than bridges: matching the bridge (`ibrname`/`obrname`) needs
 * nft_meta_bridge, which not every kernel has. Ports of bridges that are not listed are
 * not touched.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { BatchMessage } from "../kernel/netlink.ts";
import {
  bridgedArpFor,
  bridgedIpv4To,
  bridgedIpv6To,
  cmp,
  deleteTable,
  type Expr,
  ifnameBytes,
  immediateValue,
  lookup,
  metaLoad,
  newChain,
  newIfnameSet,
  newIfnameSetElements,
  newRule,
  newTable,
  NF_ACCEPT,
  NF_BR_FORWARD,
  NF_BR_LOCAL_IN,
  NF_BR_LOCAL_OUT,
  NF_BR_PRE_ROUTING,
  NF_BR_PRI_DSTNAT,
  NF_BR_PRI_FILTER,
  NF_DROP,
  NFPROTO_BRIDGE,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_META_IIFNAME,
  NFT_META_OIFNAME,
  NFT_PAYLOAD_LL_HEADER,
  payloadLoad,
  payloadWrite,
  type Rule,
  type TableRef,
  verdict,
} from "../kernel/nftables.ts";
import { parseMac } from "../kernel/ethernet.ts";
import { INTERCEPT_TABLE_NAME } from "./interface_names.ts";

/** The sidecar's own table; nothing else in the pod uses this name. */
export const INTERCEPT_TABLE: TableRef = { family: NFPROTO_BRIDGE, table: INTERCEPT_TABLE_NAME };

export const SIDECAR_PORTS_SET = { name: "sidecar_ports", id: 1 } as const;
export const VM_PORTS_SET = { name: "vm_ports", id: 2 } as const;

/** One intercepted bridge, as the ruleset needs it. */
export interface InterceptTarget {
  bridge: string;
  /** The bridge's own MAC: frames for it are routed by the pod, not redirected. */
  bridgeMac: string;
  /** The bridge's VM ports (KubeVirt taps). */
  vmPorts: string[];
  /** The sidecar veth's end that is a port of the bridge. */
  sidecarPort: string;
  /** The MAC of the sidecar veth's other end, which carries 169.254.169.254. */
  sidecarMac: string;
}

function port(key: number, name: string, op = NFT_CMP_EQ): Expr[] {
  return [metaLoad(key), cmp(op, ifnameBytes(name))];
}

function inSet(key: number, set: { name: string; id: number }, inverted = false): Expr[] {
  return [metaLoad(key), lookup(set.name, set.id, inverted)];
}

/** Every rule of the table, chain by chain, in order. */
export function interceptRules(targets: InterceptTarget[]): Rule[] {
  const rules: Rule[] = [];
  const add = (chain: string, ...exprs: Expr[][]) => rules.push({ chain, exprs: exprs.flat() });
  const drop = [verdict(NF_DROP)];
  const accept = [verdict(NF_ACCEPT)];

  for (const target of targets) {
    for (const vmPort of target.vmPorts) {
      for (
        const forMetadata of [bridgedIpv4To(METADATA_ADDRESS), bridgedIpv6To(METADATA_ADDRESS_V6)]
      ) {
        add(
          "prerouting",
          port(NFT_META_IIFNAME, vmPort),
          [payloadLoad(NFT_PAYLOAD_LL_HEADER, 0, 6), cmp(NFT_CMP_NEQ, parseMac(target.bridgeMac))],
          forMetadata,
          [immediateValue(parseMac(target.sidecarMac)), payloadWrite(NFT_PAYLOAD_LL_HEADER, 0, 6)],
        );
      }
    }
  }

  const fromVm = inSet(NFT_META_IIFNAME, VM_PORTS_SET);
  const notToSidecar = inSet(NFT_META_OIFNAME, SIDECAR_PORTS_SET, true);
  add("forward", fromVm, bridgedIpv4To(METADATA_ADDRESS), notToSidecar, drop);
  add("forward", fromVm, bridgedIpv6To(METADATA_ADDRESS_V6), notToSidecar, drop);
  add("forward", fromVm, bridgedArpFor(METADATA_ADDRESS), notToSidecar, drop);
  add(
    "forward",
    inSet(NFT_META_IIFNAME, SIDECAR_PORTS_SET),
    inSet(NFT_META_OIFNAME, VM_PORTS_SET, true),
    drop,
  );
  add(
    "forward",
    inSet(NFT_META_OIFNAME, SIDECAR_PORTS_SET),
    inSet(NFT_META_IIFNAME, VM_PORTS_SET, true),
    drop,
  );
  for (const target of targets) {
    const toSidecar = port(NFT_META_OIFNAME, target.sidecarPort);
    add(
      "forward",
      toSidecar,
      [payloadLoad(NFT_PAYLOAD_LL_HEADER, 0, 6), cmp(NFT_CMP_EQ, parseMac(target.sidecarMac))],
      accept,
    );
    add("forward", toSidecar, bridgedArpFor(METADATA_ADDRESS), accept);
    add("forward", toSidecar, drop);
  }

  add("output", inSet(NFT_META_OIFNAME, SIDECAR_PORTS_SET), drop);
  add("input", inSet(NFT_META_IIFNAME, SIDECAR_PORTS_SET), drop);
  return rules;
}

/**
 * The batch that replaces the table with one for `targets`: create-if-missing, delete,
 * create again with everything. Applied atomically, so the old rules stay in force until the
 * new ones are complete, and re-running it is harmless.
 */
export function interceptBatch(targets: InterceptTarget[]): BatchMessage[] {
  const ref = INTERCEPT_TABLE;
  const sidecarPorts = { ...SIDECAR_PORTS_SET, elements: targets.map((t) => t.sidecarPort) };
  const vmPorts = {
    ...VM_PORTS_SET,
    elements: [...new Set(targets.flatMap((t) => t.vmPorts))],
  };
  const messages: BatchMessage[] = [
    newTable(ref),
    deleteTable(ref),
    newTable(ref),
    newIfnameSet(ref, sidecarPorts),
    newIfnameSet(ref, vmPorts),
  ];
  for (const set of [sidecarPorts, vmPorts]) {
    if (set.elements.length > 0) messages.push(newIfnameSetElements(ref, set));
  }
  messages.push(
    newChain(ref, { name: "prerouting", hook: NF_BR_PRE_ROUTING, priority: NF_BR_PRI_DSTNAT }),
    newChain(ref, { name: "forward", hook: NF_BR_FORWARD, priority: NF_BR_PRI_FILTER }),
    newChain(ref, { name: "output", hook: NF_BR_LOCAL_OUT, priority: NF_BR_PRI_FILTER }),
    newChain(ref, { name: "input", hook: NF_BR_LOCAL_IN, priority: NF_BR_PRI_FILTER }),
  );
  for (const rule of interceptRules(targets)) messages.push(newRule(ref, rule));
  return messages;
}

/** The batch that removes the table (create-if-missing first, so it never fails). */
export function removalBatch(): BatchMessage[] {
  return [newTable(INTERCEPT_TABLE), deleteTable(INTERCEPT_TABLE)];
}
