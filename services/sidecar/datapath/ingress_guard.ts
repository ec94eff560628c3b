/**
 * The ingress guard: only the VM and the pod itself may reach 169.254.169.254. Without it,
 * a neighbour that routes 169.254.169.254 to the pod IP (any host on a flat pod network can)
 * would be answered by the pod's kernel, since the address is local in the pod, and could
 * read the VM's identity and tokens. Two small tables, on in every binding mode:
 *
 *   table ip kubevirt-imds-guard       input: packets for 169.254.169.254 are delivered
 *                                      only from lo (the pod's own clients, passt),
 *                                      imds-* (the sidecar veths) and k6t-* (VM bridges);
 *   table bridge kubevirt-imds-guard   prerouting: on every bridge, IPv4 and ARP for
 *                                      169.254.169.254 are accepted only from tap* ports
 *                                      (KubeVirt's VM ports), so a neighbour on the VM's
 *                                      layer 2 (through eth0-nic, <hash>-nic) reaches
 *                                      neither the bridge's own stack nor the sidecar veth.
 *
 * Installed once at start-up, replaced atomically (idempotent), and left in place on exit
 * like the rest of the sidecar's network set-up. CAP_NET_ADMIN only.
 */

import { METADATA_ADDRESS } from "../../shared/contract.ts";
import type { Logger } from "../../shared/log.ts";
import {
  type BatchMessage,
  closeNetlink,
  NETLINK_NETFILTER,
  openNetlink,
} from "../kernel/netlink.ts";
import {
  cmp,
  commit,
  deleteTable,
  type Expr,
  ifnameBytes,
  ifnamePrefixBytes,
  ipv4Bytes,
  metaLoad,
  newChain,
  newRule,
  newTable,
  NF_ACCEPT,
  NF_BR_PRE_ROUTING,
  NF_BR_PRI_DSTNAT,
  NF_DROP,
  NF_INET_LOCAL_IN,
  NF_IP_PRI_FILTER,
  NFPROTO_BRIDGE,
  NFPROTO_IPV4,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_META_IIFNAME,
  NFT_META_PROTOCOL,
  NFT_PAYLOAD_LL_HEADER,
  NFT_PAYLOAD_NETWORK_HEADER,
  payloadLoad,
  type Rule,
  type TableRef,
  verdict,
} from "../kernel/nftables.ts";

export const GUARD_IP_TABLE: TableRef = { family: NFPROTO_IPV4, table: "kubevirt-imds-guard" };
export const GUARD_BRIDGE_TABLE: TableRef = {
  family: NFPROTO_BRIDGE,
  table: "kubevirt-imds-guard",
};

/** Interfaces packets for the metadata address may arrive on, as nft wildcards. */
export const GUARD_ALLOWED_INTERFACES = ["lo", "imds-*", "k6t-*"] as const;
/** The bridge ports guests sit behind (KubeVirt names every VM tap `tap…`). */
export const GUARD_VM_PORT_PREFIX = "tap";

/** Runs before the interception's redirect (dstnat) so nothing from outside is redirected. */
const GUARD_BRIDGE_PRIORITY = NF_BR_PRI_DSTNAT - 100;

function ifname(pattern: string): Uint8Array {
  return pattern.endsWith("*") ? ifnamePrefixBytes(pattern.slice(0, -1)) : ifnameBytes(pattern);
}

function metadataDestination(): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),
    cmp(NFT_CMP_EQ, ipv4Bytes(METADATA_ADDRESS)),
  ];
}

/** The input chain of the ip table. */
export function guardIpRules(): Rule[] {
  const rules: Rule[] = GUARD_ALLOWED_INTERFACES.map((pattern) => ({
    chain: "input",
    exprs: [
      ...metadataDestination(),
      metaLoad(NFT_META_IIFNAME),
      cmp(NFT_CMP_EQ, ifname(pattern)),
      verdict(NF_ACCEPT),
    ],
  }));
  rules.push({ chain: "input", exprs: [...metadataDestination(), verdict(NF_DROP)] });
  return rules;
}

/** The prerouting chain of the bridge table. */
export function guardBridgeRules(): Rule[] {
  const notFromVm = [
    metaLoad(NFT_META_IIFNAME),
    cmp(NFT_CMP_NEQ, ifnamePrefixBytes(GUARD_VM_PORT_PREFIX)),
  ];
  return [
    {
      chain: "prerouting",
      exprs: [
        ...notFromVm,
        metaLoad(NFT_META_PROTOCOL),
        cmp(NFT_CMP_EQ, new Uint8Array([0x08, 0x00])),
        ...metadataDestination(),
        verdict(NF_DROP),
      ],
    },
    {
      chain: "prerouting",
      exprs: [
        ...notFromVm,
        payloadLoad(NFT_PAYLOAD_LL_HEADER, 12, 2),
        cmp(NFT_CMP_EQ, new Uint8Array([0x08, 0x06])),
        payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 24, 4),
        cmp(NFT_CMP_EQ, ipv4Bytes(METADATA_ADDRESS)),
        verdict(NF_DROP),
      ],
    },
  ];
}

/** Both tables, each replaced as a whole (create-if-missing, delete, create), in one batch. */
export function guardBatch(): BatchMessage[] {
  const messages: BatchMessage[] = [];
  for (const ref of [GUARD_IP_TABLE, GUARD_BRIDGE_TABLE]) {
    messages.push(newTable(ref), deleteTable(ref), newTable(ref));
  }
  messages.push(
    newChain(GUARD_IP_TABLE, {
      name: "input",
      hook: NF_INET_LOCAL_IN,
      priority: NF_IP_PRI_FILTER,
    }),
    ...guardIpRules().map((rule) => newRule(GUARD_IP_TABLE, rule)),
    newChain(GUARD_BRIDGE_TABLE, {
      name: "prerouting",
      hook: NF_BR_PRE_ROUTING,
      priority: GUARD_BRIDGE_PRIORITY,
    }),
    ...guardBridgeRules().map((rule) => newRule(GUARD_BRIDGE_TABLE, rule)),
  );
  return messages;
}

function send(messages: BatchMessage[], what: string): void {
  const sock = openNetlink(NETLINK_NETFILTER);
  try {
    commit(sock, messages, what);
  } finally {
    closeNetlink(sock);
  }
}

/** Installs (or refreshes) the guard. Call before the server starts listening. */
export function installIngressGuard(log: Logger): void {
  send(guardBatch(), `install the ${METADATA_ADDRESS} ingress guard (nftables)`);
  log.info(
    `only the VM and the pod itself can reach ${METADATA_ADDRESS}: packets for it are ` +
      `accepted from ${GUARD_ALLOWED_INTERFACES.join(", ")} and, inside VM bridges, ` +
      `from ${GUARD_VM_PORT_PREFIX}* ports only`,
    { tables: [`ip ${GUARD_IP_TABLE.table}`, `bridge ${GUARD_BRIDGE_TABLE.table}`] },
  );
}

/** Removes the guard (not on SIGTERM: the guard should outlive a restart). */
export function removeIngressGuard(log: Logger): void {
  send(
    [GUARD_IP_TABLE, GUARD_BRIDGE_TABLE].flatMap((ref) => [newTable(ref), deleteTable(ref)]),
    `remove the ${METADATA_ADDRESS} ingress guard (nftables)`,
  );
  log.info(`removed the ${METADATA_ADDRESS} ingress guard`);
}
