/**
 * The response hop limit: every packet the service sends (from 169.254.169.254 or
 * fd00:ec2::254) leaves the pod with IPv4 TTL / IPv6 hop limit set to the configured value,
 * 1 by default. The guest is one link away and receives it; a workload the guest routes for
 * (a container, a nested VM) is one hop further, and the guest's forwarding drops the packet
 * (TTL exceeded), so such a workload cannot complete a TCP handshake with the service.
 *
 *   table ip kubevirt-imds-hop-limit    output: ip saddr 169.254.169.254 ip ttl set N
 *   table ip6 kubevirt-imds-hop-limit   output: ip6 saddr fd00:ec2::254 ip6 hoplimit set N
 *
 * The kernel updates the IPv4 header checksum. 0 removes both tables (the kernel's default TTL,
 * 64, applies). Replaced atomically at start-up, like the ingress guard.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { Logger } from "../../shared/log.ts";
import type { BatchMessage } from "../kernel/netlink.ts";
import {
  commit,
  deleteTable,
  ipv4SourceIs,
  ipv6SourceIs,
  newChain,
  newRule,
  newTable,
  NF_INET_LOCAL_OUT,
  NF_IP_PRI_MANGLE,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  type Rule,
  setIpv4Ttl,
  setIpv6HopLimit,
  type TableRef,
} from "../kernel/nftables.ts";
import { HOP_LIMIT_TABLE_NAME } from "./interface_names.ts";

export const HOP_LIMIT_IP_TABLE: TableRef = { family: NFPROTO_IPV4, table: HOP_LIMIT_TABLE_NAME };
export const HOP_LIMIT_IP6_TABLE: TableRef = {
  family: NFPROTO_IPV6,
  table: HOP_LIMIT_TABLE_NAME,
};

/** The largest value an IPv4 TTL or IPv6 hop limit can hold. */
export const MAX_HOP_LIMIT = 255;

export function hopLimitRules(limit: number): { ip: Rule; ip6: Rule } {
  return {
    ip: { chain: "output", exprs: [...ipv4SourceIs(METADATA_ADDRESS), ...setIpv4Ttl(limit)] },
    ip6: {
      chain: "output",
      exprs: [...ipv6SourceIs(METADATA_ADDRESS_V6), ...setIpv6HopLimit(limit)],
    },
  };
}

/** Both tables replaced as a whole; with `limit` 0, only removed. */
export function hopLimitBatch(limit: number): BatchMessage[] {
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_HOP_LIMIT) {
    throw new Error(`hop limit must be an integer from 0 to ${MAX_HOP_LIMIT}, got ${limit}`);
  }
  const messages: BatchMessage[] = [];
  for (const ref of [HOP_LIMIT_IP_TABLE, HOP_LIMIT_IP6_TABLE]) {
    messages.push(newTable(ref), deleteTable(ref));
    if (limit > 0) messages.push(newTable(ref));
  }
  if (limit === 0) return messages;
  const rules = hopLimitRules(limit);
  for (
    const [ref, rule] of [[HOP_LIMIT_IP_TABLE, rules.ip], [HOP_LIMIT_IP6_TABLE, rules.ip6]] as const
  ) {
    messages.push(
      newChain(ref, { name: "output", hook: NF_INET_LOCAL_OUT, priority: NF_IP_PRI_MANGLE }),
      newRule(ref, rule),
    );
  }
  return messages;
}

/** Installs (or removes, for 0) the hop limit. Call before the server starts listening. */
export function installHopLimit(limit: number, log: Logger): void {
  commit(hopLimitBatch(limit), `set the hop limit of the service's replies to ${limit}`);
  if (limit === 0) {
    log.info("replies keep the kernel's default TTL and hop limit (hop limit 0: turned off)");
  } else {
    log.info(
      `replies leave with TTL / hop limit ${limit}: ${
        limit === 1
          ? "the guest receives them, nothing it routes for does"
          : `they cross at most ${limit - 1} router(s) after the guest`
      }`,
      { hopLimit: limit, tables: [`ip ${HOP_LIMIT_TABLE_NAME}`, `ip6 ${HOP_LIMIT_TABLE_NAME}`] },
    );
  }
}
