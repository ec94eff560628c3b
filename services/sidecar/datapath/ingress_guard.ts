/**
 * The ingress guard: only the VM and the pod itself may reach 169.254.169.254 and
 * fd00:ec2::254. Without it, a neighbour that routes either address to the pod IP (any host on
 * a flat pod network can) would be answered by the pod's kernel, since the addresses are local
 * in the pod, and could read the VM's identity and tokens. Three small tables, on in every
 * binding mode:
 *
 *   table ip kubevirt-imds-guard       input: packets for 169.254.169.254 are delivered
 *                                      only from lo (the pod's own clients, passt),
 *                                      imds-* (the sidecar veths) and k6t-* (VM bridges);
 *   table ip6 kubevirt-imds-guard      input: the same for fd00:ec2::254;
 *   table bridge kubevirt-imds-guard   prerouting: on every bridge, IPv4 and ARP for
 *                                      169.254.169.254 (and IPv6 for fd00:ec2::254) are
 *                                      accepted only from tap* ports
 *                                      (KubeVirt's VM ports), so a neighbour on the VM's
 *                                      layer 2 (through eth0-nic, <hash>-nic) reaches
 *                                      neither the bridge's own stack nor the sidecar veth.
 *
 * The bridge table also keeps IPv6 between the VM and the sidecar: in prerouting, an
 * advertisement for fd00:ec2::254 is dropped unless the sidecar's veth (imdb-*) sent it, so no
 * host on the VM's network can claim the address; in forward, the sidecar's veth exchanges
 * IPv6 with VM ports only (its neighbour solicitations and multicast reports never leave the
 * pod, and nothing from outside reaches it), and the VM's packets and solicitations for
 * fd00:ec2::254 go nowhere but the sidecar's veth (should the interception be off, a
 * bridge-binding guest's requests are dropped rather than sent towards the node).
 *
 * Installed once at start-up, replaced atomically (idempotent), and left in place on exit
 * like the rest of the sidecar's network set-up. CAP_NET_ADMIN only.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { Logger } from "../../shared/log.ts";
import type { BatchMessage } from "../kernel/netlink.ts";
import {
  bridgedArpFor,
  bridgedIpv4To,
  bridgedIpv6To,
  cmp,
  commit,
  deleteTable,
  type Expr,
  ifnameBytes,
  ifnamePrefixBytes,
  ipv4DestinationIs,
  ipv6DestinationIs,
  metaLoad,
  newChain,
  newRule,
  newTable,
  NF_ACCEPT,
  NF_BR_FORWARD,
  NF_BR_PRE_ROUTING,
  NF_BR_PRI_DSTNAT,
  NF_BR_PRI_FILTER,
  NF_DROP,
  NF_INET_LOCAL_IN,
  NF_IP_PRI_FILTER,
  NFPROTO_BRIDGE,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_META_IIFNAME,
  NFT_META_OIFNAME,
  NFT_META_PROTOCOL,
  NFT_PAYLOAD_NETWORK_HEADER,
  payloadLoad,
  type Rule,
  type TableRef,
  verdict,
} from "../kernel/nftables.ts";
import { ETH_P_IPV6, ethertypeBytes } from "../kernel/ethernet.ts";
import { IPPROTO_ICMPV6, ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT } from "../kernel/icmpv6_ndp.ts";
import { parseIpv6 } from "../kernel/ipv6.ts";
import {
  BRIDGE_SIDE_VETH_PREFIX,
  GUARD_TABLE_NAME,
  KUBEVIRT_BRIDGE_PREFIX,
  KUBEVIRT_TAP_PREFIX,
  LOOPBACK,
  SIDECAR_VETH_PREFIX,
} from "./interface_names.ts";

export const GUARD_IP_TABLE: TableRef = { family: NFPROTO_IPV4, table: GUARD_TABLE_NAME };
export const GUARD_IP6_TABLE: TableRef = { family: NFPROTO_IPV6, table: GUARD_TABLE_NAME };
export const GUARD_BRIDGE_TABLE: TableRef = { family: NFPROTO_BRIDGE, table: GUARD_TABLE_NAME };

/**
 * Interfaces packets for the metadata address may arrive on, as nft wildcards: loopback, the
 * sidecar veths and the VM bridges.
 */
export const GUARD_ALLOWED_INTERFACES = [
  LOOPBACK,
  `${SIDECAR_VETH_PREFIX}*`,
  `${KUBEVIRT_BRIDGE_PREFIX}*`,
] as const;

/** Runs before the interception's redirect (dstnat) so nothing from outside is redirected. */
const GUARD_BRIDGE_PRIORITY = NF_BR_PRI_DSTNAT - 100;

function ifname(pattern: string): Uint8Array {
  return pattern.endsWith("*") ? ifnamePrefixBytes(pattern.slice(0, -1)) : ifnameBytes(pattern);
}

/** The input chain of the ip table. */
export function guardIpRules(): Rule[] {
  return inputRules(ipv4DestinationIs(METADATA_ADDRESS));
}

/** The input chain of the ip6 table. */
export function guardIp6Rules(): Rule[] {
  return inputRules(ipv6DestinationIs(METADATA_ADDRESS_V6));
}

function inputRules(forMetadata: Expr[]): Rule[] {
  const rules: Rule[] = GUARD_ALLOWED_INTERFACES.map((pattern) => ({
    chain: "input",
    exprs: [
      ...forMetadata,
      metaLoad(NFT_META_IIFNAME),
      cmp(NFT_CMP_EQ, ifname(pattern)),
      verdict(NF_ACCEPT),
    ],
  }));
  rules.push({ chain: "input", exprs: [...forMetadata, verdict(NF_DROP)] });
  return rules;
}

/** The prerouting chain of the bridge table. */
export function guardBridgeRules(): Rule[] {
  const notFromVm = [
    metaLoad(NFT_META_IIFNAME),
    cmp(NFT_CMP_NEQ, ifnamePrefixBytes(KUBEVIRT_TAP_PREFIX)),
  ];
  return [
    {
      chain: "prerouting",
      exprs: [
        ...notFromVm,
        ...bridgedIpv4To(METADATA_ADDRESS),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "prerouting",
      exprs: [
        ...notFromVm,
        ...bridgedArpFor(METADATA_ADDRESS),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "prerouting",
      exprs: [
        ...notFromVm,
        ...bridgedIpv6To(METADATA_ADDRESS_V6),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "prerouting",
      exprs: [
        ...interfaceIs(NFT_META_IIFNAME, NFT_CMP_NEQ, BRIDGE_SIDE_VETH_PREFIX),
        ...neighbourDiscoveryFor(ND_NEIGHBOR_ADVERT, METADATA_ADDRESS_V6),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "forward",
      exprs: [
        ...isIpv6,
        ...interfaceIs(NFT_META_IIFNAME, NFT_CMP_EQ, BRIDGE_SIDE_VETH_PREFIX),
        ...interfaceIs(NFT_META_OIFNAME, NFT_CMP_NEQ, KUBEVIRT_TAP_PREFIX),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "forward",
      exprs: [
        ...isIpv6,
        ...interfaceIs(NFT_META_OIFNAME, NFT_CMP_EQ, BRIDGE_SIDE_VETH_PREFIX),
        ...interfaceIs(NFT_META_IIFNAME, NFT_CMP_NEQ, KUBEVIRT_TAP_PREFIX),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "forward",
      exprs: [
        ...interfaceIs(NFT_META_OIFNAME, NFT_CMP_NEQ, BRIDGE_SIDE_VETH_PREFIX),
        ...bridgedIpv6To(METADATA_ADDRESS_V6),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "forward",
      exprs: [
        ...interfaceIs(NFT_META_OIFNAME, NFT_CMP_NEQ, BRIDGE_SIDE_VETH_PREFIX),
        ...neighbourDiscoveryFor(ND_NEIGHBOR_SOLICIT, METADATA_ADDRESS_V6),
        verdict(NF_DROP),
      ],
    },
  ];
}

const isIpv6 = [metaLoad(NFT_META_PROTOCOL), cmp(NFT_CMP_EQ, ethertypeBytes(ETH_P_IPV6))];

/** `iifname`/`oifname` equal or not to `prefix*`. */
function interfaceIs(key: number, op: number, prefix: string): Expr[] {
  return [metaLoad(key), cmp(op, ifnamePrefixBytes(prefix))];
}

/**
 * `meta protocol ip6 ip6 nexthdr icmpv6 icmpv6 type <type>` with target `address` (an
 * advertisement or solicitation without extension headers: the target is at 48 of the network
 * header).
 */
function neighbourDiscoveryFor(type: number, address: string): Expr[] {
  return [
    ...isIpv6,
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 6, 1),
    cmp(NFT_CMP_EQ, Uint8Array.of(IPPROTO_ICMPV6)),
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 40, 1),
    cmp(NFT_CMP_EQ, Uint8Array.of(type)),
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 48, 16),
    cmp(NFT_CMP_EQ, parseIpv6(address)),
  ];
}

/** The tables, each replaced as a whole (create-if-missing, delete, create), in one batch. */
export function guardBatch(): BatchMessage[] {
  const messages: BatchMessage[] = [];
  for (const ref of [GUARD_IP_TABLE, GUARD_IP6_TABLE, GUARD_BRIDGE_TABLE]) {
    messages.push(newTable(ref), deleteTable(ref), newTable(ref));
  }
  messages.push(
    newChain(GUARD_IP_TABLE, {
      name: "input",
      hook: NF_INET_LOCAL_IN,
      priority: NF_IP_PRI_FILTER,
    }),
    ...guardIpRules().map((rule) => newRule(GUARD_IP_TABLE, rule)),
    newChain(GUARD_IP6_TABLE, {
      name: "input",
      hook: NF_INET_LOCAL_IN,
      priority: NF_IP_PRI_FILTER,
    }),
    ...guardIp6Rules().map((rule) => newRule(GUARD_IP6_TABLE, rule)),
    newChain(GUARD_BRIDGE_TABLE, {
      name: "prerouting",
      hook: NF_BR_PRE_ROUTING,
      priority: GUARD_BRIDGE_PRIORITY,
    }),
    newChain(GUARD_BRIDGE_TABLE, {
      name: "forward",
      hook: NF_BR_FORWARD,
      priority: NF_BR_PRI_FILTER,
    }),
    ...guardBridgeRules().map((rule) => newRule(GUARD_BRIDGE_TABLE, rule)),
  );
  return messages;
}

/** Installs (or refreshes) the guard. Call before the server starts listening. */
export function installIngressGuard(log: Logger): void {
  commit(
    guardBatch(),
    `install the ${METADATA_ADDRESS} and ${METADATA_ADDRESS_V6} ingress guard (nftables)`,
  );
  log.info(
    `only the VM and the pod itself can reach ${METADATA_ADDRESS} and ${METADATA_ADDRESS_V6}: packets for them are ` +
      `accepted from ${GUARD_ALLOWED_INTERFACES.join(", ")} and, inside VM bridges, ` +
      `from ${KUBEVIRT_TAP_PREFIX}* ports only`,
    {
      tables: [
        `ip ${GUARD_IP_TABLE.table}`,
        `ip6 ${GUARD_IP6_TABLE.table}`,
        `bridge ${GUARD_BRIDGE_TABLE.table}`,
      ],
    },
  );
}
