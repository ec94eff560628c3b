/**
 * nftables messages over NETLINK_NETFILTER: just enough of the nf_tables netlink API to
 * build one table with base chains, named interface-name sets and rules made of the
 * meta / cmp / payload / immediate / lookup expressions, and to send them as one atomic
 * batch. Layouts follow <linux/netfilter/nf_tables.h> and what `nft --debug=netlink,mnl`
 * sends for the same rules; `describeRule` prints a rule's expressions in nft's
 * `--debug=netlink` notation so the two can be compared.
 *
 * nftables attributes are big-endian (network order) except register contents, which
 * are raw bytes; every nested attribute carries NLA_F_NESTED.
 */

import {
  attr,
  attrStr,
  attrTable,
  attrU32be,
  type BatchMessage,
  closeNetlink,
  concat,
  nested,
  NETLINK_NETFILTER,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  openNetlink,
  parseAttrs,
  str,
  transact,
  u32be,
} from "./netlink.ts";
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETHERTYPE_OFFSET, ethertypeBytes } from "./ethernet.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";

// ---- constants (linux/netfilter/nfnetlink.h, nf_tables.h) -----------------------------------

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;

export const NFT_MSG_NEWTABLE = 0;
export const NFT_MSG_DELTABLE = 2;
export const NFT_MSG_NEWCHAIN = 3;
export const NFT_MSG_NEWRULE = 6;
export const NFT_MSG_NEWSET = 9;
export const NFT_MSG_NEWSETELEM = 12;

/** nfgenmsg families. */
export const NFPROTO_IPV4 = 2;
export const NFPROTO_BRIDGE = 7;
export const NFPROTO_IPV6 = 10;

/** IPv4 hook for packets delivered to the local stack. */
export const NF_INET_LOCAL_IN = 1;
export const NF_INET_LOCAL_OUT = 3;
export const NF_IP_PRI_FILTER = 0;
export const NF_IP_PRI_MANGLE = -150;

/** Bridge hooks (linux/netfilter_bridge.h). */
export const NF_BR_PRE_ROUTING = 0;
export const NF_BR_LOCAL_IN = 1;
export const NF_BR_FORWARD = 2;
export const NF_BR_LOCAL_OUT = 3;

/** Bridge priorities, as nft names them. */
export const NF_BR_PRI_DSTNAT = -300;
export const NF_BR_PRI_FILTER = -200;

const NFTA_TABLE_NAME = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;
const NFTA_CHAIN_HOOK = 4;
const NFTA_CHAIN_POLICY = 5;
const NFTA_CHAIN_TYPE = 7;
const NFTA_HOOK_HOOKNUM = 1;
const NFTA_HOOK_PRIORITY = 2;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_KEY_TYPE = 4;
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_ID = 10;
const NFTA_SET_USERDATA = 13;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_LIST_SET_ID = 4;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_META_DREG = 1;
const NFTA_META_KEY = 2;
const NFTA_CMP_SREG = 1;
const NFTA_CMP_OP = 2;
const NFTA_CMP_DATA = 3;
const NFTA_PAYLOAD_DREG = 1;
const NFTA_PAYLOAD_BASE = 2;
const NFTA_PAYLOAD_OFFSET = 3;
const NFTA_PAYLOAD_LEN = 4;
const NFTA_PAYLOAD_SREG = 5;
const NFTA_PAYLOAD_CSUM_TYPE = 6;
const NFTA_PAYLOAD_CSUM_OFFSET = 7;
const NFTA_BITWISE_SREG = 1;
const NFTA_BITWISE_DREG = 2;
const NFTA_BITWISE_LEN = 3;
const NFTA_BITWISE_MASK = 4;
const NFTA_BITWISE_XOR = 5;
const NFTA_BITWISE_OP = 6;
const NFT_BITWISE_BOOL = 0;
const NFTA_IMMEDIATE_DREG = 1;
const NFTA_IMMEDIATE_DATA = 2;
const NFTA_LOOKUP_SET = 1;
const NFTA_LOOKUP_SREG = 2;
const NFTA_LOOKUP_SET_ID = 4;
const NFTA_LOOKUP_FLAGS = 5;

/** The verdict register and the first 16-byte data register. */
export const NFT_REG_VERDICT = 0;
export const NFT_REG_1 = 1;

export const NF_DROP = 0;
export const NF_ACCEPT = 1;

export const NFT_META_PROTOCOL = 1;
export const NFT_META_IIFNAME = 6;
export const NFT_META_OIFNAME = 7;

export const NFT_CMP_EQ = 0;
export const NFT_CMP_NEQ = 1;

export const NFT_PAYLOAD_LL_HEADER = 0;
export const NFT_PAYLOAD_NETWORK_HEADER = 1;

/** The kernel updates the Internet checksum at `csumOffset` after a payload write. */
export const NFT_PAYLOAD_CSUM_INET = 1;

export const NFT_LOOKUP_F_INV = 1;

/** nft's datatype number for `ifname` (NFTA_SET_KEY_TYPE is for nft's display only). */
export const NFT_DATATYPE_IFNAME = 41;
/** Interface names are compared as IFNAMSIZ (16) NUL-padded bytes. */
export const IFNAMSIZ = 16;

// ---- values ---------------------------------------------------------------------------------

/** An interface name as the kernel compares it: 16 bytes, NUL-padded. */
export function ifnameBytes(name: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length >= IFNAMSIZ) throw new Error(`interface name too long: ${name}`);
  const out = new Uint8Array(IFNAMSIZ);
  out.set(bytes);
  return out;
}

/**
 * The bytes nft compares for an interface-name wildcard such as `"tap*"`: the prefix alone,
 * without padding, so only that many bytes of the name are compared.
 */
export function ifnamePrefixBytes(prefix: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(prefix);
  if (bytes.length === 0 || bytes.length >= IFNAMSIZ) {
    throw new Error(`not an interface name prefix: ${JSON.stringify(prefix)}`);
  }
  return new Uint8Array(bytes);
}

// ---- expressions ----------------------------------------------------------------------------

/** One rule expression: its kernel name and its NFTA_EXPR_DATA attributes. */
export interface Expr {
  name: string;
  data: Uint8Array[];
}

function dataValue(type: number, value: Uint8Array): Uint8Array {
  return nested(type, [attr(NFTA_DATA_VALUE, value)], { flag: true });
}

/** `meta load <key> => reg` */
export function metaLoad(key: number, dreg = NFT_REG_1): Expr {
  return { name: "meta", data: [attrU32be(NFTA_META_KEY, key), attrU32be(NFTA_META_DREG, dreg)] };
}

/** `cmp <op> reg <value>` */
export function cmp(op: number, value: Uint8Array, sreg = NFT_REG_1): Expr {
  return {
    name: "cmp",
    data: [
      attrU32be(NFTA_CMP_SREG, sreg),
      attrU32be(NFTA_CMP_OP, op),
      dataValue(NFTA_CMP_DATA, value),
    ],
  };
}

/** `payload load <len>b @ <base> + <offset> => reg` */
export function payloadLoad(base: number, offset: number, length: number, dreg = NFT_REG_1): Expr {
  return {
    name: "payload",
    data: [
      attrU32be(NFTA_PAYLOAD_DREG, dreg),
      attrU32be(NFTA_PAYLOAD_BASE, base),
      attrU32be(NFTA_PAYLOAD_OFFSET, offset),
      attrU32be(NFTA_PAYLOAD_LEN, length),
    ],
  };
}

/**
 * `payload write reg => <len>b @ <base> + <offset>`; with `checksum`, the kernel also updates
 * the Internet checksum at `checksum.offset` of the same header (the IPv4 header checksum).
 */
export function payloadWrite(
  base: number,
  offset: number,
  length: number,
  sreg = NFT_REG_1,
  checksum?: { type: number; offset: number },
): Expr {
  const data = [
    attrU32be(NFTA_PAYLOAD_SREG, sreg),
    attrU32be(NFTA_PAYLOAD_BASE, base),
    attrU32be(NFTA_PAYLOAD_OFFSET, offset),
    attrU32be(NFTA_PAYLOAD_LEN, length),
  ];
  if (checksum) {
    data.push(
      attrU32be(NFTA_PAYLOAD_CSUM_TYPE, checksum.type),
      attrU32be(NFTA_PAYLOAD_CSUM_OFFSET, checksum.offset),
    );
  }
  return { name: "payload", data };
}

/** `bitwise reg = (reg & mask) ^ xor` over `mask.length` bytes. */
export function bitwise(mask: Uint8Array, xor: Uint8Array, reg = NFT_REG_1): Expr {
  return {
    name: "bitwise",
    data: [
      attrU32be(NFTA_BITWISE_SREG, reg),
      attrU32be(NFTA_BITWISE_DREG, reg),
      attrU32be(NFTA_BITWISE_OP, NFT_BITWISE_BOOL),
      attrU32be(NFTA_BITWISE_LEN, mask.length),
      dataValue(NFTA_BITWISE_MASK, mask),
      dataValue(NFTA_BITWISE_XOR, xor),
    ],
  };
}

/** `immediate reg <value>` */
export function immediateValue(value: Uint8Array, dreg = NFT_REG_1): Expr {
  return {
    name: "immediate",
    data: [attrU32be(NFTA_IMMEDIATE_DREG, dreg), dataValue(NFTA_IMMEDIATE_DATA, value)],
  };
}

/** `immediate reg 0 accept|drop` */
export function verdict(code: number): Expr {
  return {
    name: "immediate",
    data: [
      attrU32be(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT),
      nested(NFTA_IMMEDIATE_DATA, [
        nested(NFTA_DATA_VERDICT, [attrU32be(NFTA_VERDICT_CODE, code)], { flag: true }),
      ], { flag: true }),
    ],
  };
}

/** `lookup reg set <name>` (with `inverted`: matches when the value is NOT in the set). */
export function lookup(set: string, setId: number, inverted: boolean, sreg = NFT_REG_1): Expr {
  const data = [
    attrU32be(NFTA_LOOKUP_SREG, sreg),
    attrStr(NFTA_LOOKUP_SET, set),
    attrU32be(NFTA_LOOKUP_SET_ID, setId),
  ];
  if (inverted) data.push(attrU32be(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV));
  return { name: "lookup", data };
}

// ---- matches built from the expressions above ---------------------------------------------

/** Offsets in the IPv4 header: TTL (followed by the protocol), checksum, addresses. */
const IPV4_TTL_OFFSET = 8;
const IPV4_CHECKSUM_OFFSET = 10;
const IPV4_SOURCE_OFFSET = 12;
const IPV4_DESTINATION_OFFSET = 16;
/** Offsets in the IPv6 header: hop limit, addresses. */
const IPV6_HOP_LIMIT_OFFSET = 7;
const IPV6_SOURCE_OFFSET = 8;
const IPV6_DESTINATION_OFFSET = 24;
/** Offset of the target protocol address in an IPv4-over-Ethernet ARP packet. */
const ARP_TARGET_IP_OFFSET = 24;

/** `ip daddr <address>` (the network header must be IPv4). */
export function ipv4DestinationIs(address: string): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV4_DESTINATION_OFFSET, 4),
    cmp(NFT_CMP_EQ, parseIpv4(address)),
  ];
}

/** `ip saddr <address>` (the network header must be IPv4). */
export function ipv4SourceIs(address: string): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV4_SOURCE_OFFSET, 4),
    cmp(NFT_CMP_EQ, parseIpv4(address)),
  ];
}

/** `ip6 daddr <address>` (the network header must be IPv6). */
export function ipv6DestinationIs(address: string): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV6_DESTINATION_OFFSET, 16),
    cmp(NFT_CMP_EQ, parseIpv6(address)),
  ];
}

/** `ip6 saddr <address>` (the network header must be IPv6). */
export function ipv6SourceIs(address: string): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV6_SOURCE_OFFSET, 16),
    cmp(NFT_CMP_EQ, parseIpv6(address)),
  ];
}

/**
 * `ip ttl set <ttl>`, as nft does it: TTL and protocol are loaded as one 16-bit word, the TTL
 * byte replaced, and the word written back with the header checksum updated by the kernel.
 */
export function setIpv4Ttl(ttl: number): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV4_TTL_OFFSET, 2),
    bitwise(Uint8Array.of(0x00, 0xff), Uint8Array.of(ttl, 0x00)),
    payloadWrite(NFT_PAYLOAD_NETWORK_HEADER, IPV4_TTL_OFFSET, 2, NFT_REG_1, {
      type: NFT_PAYLOAD_CSUM_INET,
      offset: IPV4_CHECKSUM_OFFSET,
    }),
  ];
}

/** `ip6 hoplimit set <limit>` (IPv6 has no header checksum). */
export function setIpv6HopLimit(limit: number): Expr[] {
  return [
    immediateValue(Uint8Array.of(limit)),
    payloadWrite(NFT_PAYLOAD_NETWORK_HEADER, IPV6_HOP_LIMIT_OFFSET, 1),
  ];
}

/** In a bridge: `meta protocol ip ip daddr <address>`. */
export function bridgedIpv4To(address: string): Expr[] {
  return [
    metaLoad(NFT_META_PROTOCOL),
    cmp(NFT_CMP_EQ, ethertypeBytes(ETH_P_IP)),
    ...ipv4DestinationIs(address),
  ];
}

/** In a bridge: `meta protocol ip6 ip6 daddr <address>`. */
export function bridgedIpv6To(address: string): Expr[] {
  return [
    metaLoad(NFT_META_PROTOCOL),
    cmp(NFT_CMP_EQ, ethertypeBytes(ETH_P_IPV6)),
    ...ipv6DestinationIs(address),
  ];
}

/** In a bridge: `ether type arp arp daddr ip <address>`. */
export function bridgedArpFor(address: string): Expr[] {
  return [
    payloadLoad(NFT_PAYLOAD_LL_HEADER, ETHERTYPE_OFFSET, 2),
    cmp(NFT_CMP_EQ, ethertypeBytes(ETH_P_ARP)),
    payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, ARP_TARGET_IP_OFFSET, 4),
    cmp(NFT_CMP_EQ, parseIpv4(address)),
  ];
}

function encodeExpr(expr: Expr): Uint8Array {
  return nested(NFTA_LIST_ELEM, [
    attrStr(NFTA_EXPR_NAME, expr.name),
    nested(NFTA_EXPR_DATA, expr.data, { flag: true }),
  ], { flag: true });
}

// ---- objects --------------------------------------------------------------------------------

/** The nfgenmsg header every nftables message starts with. */
export function nfgenmsg(family: number, resourceId = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4);
  out[0] = family;
  out[1] = 0; // NFNETLINK_V0
  new DataView(out.buffer).setUint16(2, resourceId, false);
  return out;
}

function nftType(message: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | message;
}

export interface TableRef {
  family: number;
  table: string;
}

export interface BaseChain {
  name: string;
  hook: number;
  priority: number;
  /** NF_ACCEPT unless given. */
  policy?: number;
}

export interface Rule {
  chain: string;
  exprs: Expr[];
}

/** A named set of interface names. `id` ties lookups to it inside one batch. */
export interface IfnameSet {
  name: string;
  id: number;
  elements: string[];
}

const CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;

export function newTable(ref: TableRef): BatchMessage {
  return {
    type: nftType(NFT_MSG_NEWTABLE),
    flags: CREATE,
    payload: concat(nfgenmsg(ref.family), attrStr(NFTA_TABLE_NAME, ref.table)),
  };
}

export function deleteTable(ref: TableRef): BatchMessage {
  return {
    type: nftType(NFT_MSG_DELTABLE),
    flags: NLM_F_REQUEST | NLM_F_ACK,
    payload: concat(nfgenmsg(ref.family), attrStr(NFTA_TABLE_NAME, ref.table)),
  };
}

/** A base chain of type filter. */
export function newChain(ref: TableRef, chain: BaseChain): BatchMessage {
  return {
    type: nftType(NFT_MSG_NEWCHAIN),
    flags: CREATE,
    payload: concat(
      nfgenmsg(ref.family),
      attrStr(NFTA_CHAIN_TABLE, ref.table),
      attrStr(NFTA_CHAIN_NAME, chain.name),
      attrStr(NFTA_CHAIN_TYPE, "filter"),
      attrU32be(NFTA_CHAIN_POLICY, chain.policy ?? NF_ACCEPT),
      nested(NFTA_CHAIN_HOOK, [
        attrU32be(NFTA_HOOK_HOOKNUM, chain.hook),
        attrU32be(NFTA_HOOK_PRIORITY, chain.priority >>> 0),
      ], { flag: true }),
    ),
  };
}

/** nft's set user data: "key byte order = host" (tells `nft list` to print names as text). */
const IFNAME_SET_USERDATA = new Uint8Array([0x00, 0x04, 0x01, 0x00, 0x00, 0x00]);

export function newIfnameSet(ref: TableRef, set: IfnameSet): BatchMessage {
  return {
    type: nftType(NFT_MSG_NEWSET),
    flags: CREATE,
    payload: concat(
      nfgenmsg(ref.family),
      attrStr(NFTA_SET_TABLE, ref.table),
      attrStr(NFTA_SET_NAME, set.name),
      attrU32be(NFTA_SET_FLAGS, 0),
      attrU32be(NFTA_SET_KEY_TYPE, NFT_DATATYPE_IFNAME),
      attrU32be(NFTA_SET_KEY_LEN, IFNAMSIZ),
      attrU32be(NFTA_SET_ID, set.id),
      attr(NFTA_SET_USERDATA, IFNAME_SET_USERDATA),
    ),
  };
}

export function newIfnameSetElements(ref: TableRef, set: IfnameSet): BatchMessage {
  return {
    type: nftType(NFT_MSG_NEWSETELEM),
    flags: CREATE,
    payload: concat(
      nfgenmsg(ref.family),
      attrStr(NFTA_SET_ELEM_LIST_TABLE, ref.table),
      attrStr(NFTA_SET_ELEM_LIST_SET, set.name),
      attrU32be(NFTA_SET_ELEM_LIST_SET_ID, set.id),
      nested(
        NFTA_SET_ELEM_LIST_ELEMENTS,
        set.elements.map((name) =>
          nested(NFTA_LIST_ELEM, [
            dataValue(NFTA_SET_ELEM_KEY, ifnameBytes(name)),
          ], { flag: true })
        ),
        { flag: true },
      ),
    ),
  };
}

export function newRule(ref: TableRef, rule: Rule): BatchMessage {
  return {
    type: nftType(NFT_MSG_NEWRULE),
    flags: CREATE | NLM_F_APPEND,
    payload: concat(
      nfgenmsg(ref.family),
      attrStr(NFTA_RULE_TABLE, ref.table),
      attrStr(NFTA_RULE_CHAIN, rule.chain),
      nested(NFTA_RULE_EXPRESSIONS, rule.exprs.map(encodeExpr), { flag: true }),
    ),
  };
}

/** Wraps messages in BATCH_BEGIN … BATCH_END: the kernel applies all of them or none. */
export function batch(messages: BatchMessage[]): BatchMessage[] {
  const marker = (type: number): BatchMessage => ({
    type,
    flags: NLM_F_REQUEST,
    payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES),
  });
  return [marker(NFNL_MSG_BATCH_BEGIN), ...messages, marker(NFNL_MSG_BATCH_END)];
}

/**
 * Sends one batch on a NETLINK_NETFILTER socket of its own, closed before returning; throws the
 * kernel's first error.
 */
export function commit(messages: BatchMessage[], what: string): void {
  const sock = openNetlink(NETLINK_NETFILTER);
  try {
    transact(sock, batch(messages), what);
  } finally {
    closeNetlink(sock);
  }
}

// ---- decoding (tests and diagnostics) -------------------------------------------------------

const META_KEYS: Record<number, string> = {
  [NFT_META_PROTOCOL]: "protocol",
  [NFT_META_IIFNAME]: "iifname",
  [NFT_META_OIFNAME]: "oifname",
};
const BASES: Record<number, string> = { 0: "link", 1: "network", 2: "transport" };
const CMP_OPS: Record<number, string> = { 0: "eq", 1: "neq", 2: "lt", 3: "lte", 4: "gt", 5: "gte" };
const VERDICTS: Record<number, string> = { 0: "drop", 1: "accept" };

/** Register contents as nft prints them: 32-bit little-endian words, zero-padded. */
export function formatRegisterData(bytes: Uint8Array): string {
  const words: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 4) {
    let word = 0;
    for (let i = 3; i >= 0; i--) word = word * 256 + (bytes[offset + i] ?? 0);
    words.push("0x" + word.toString(16).padStart(8, "0"));
  }
  return words.join(" ");
}

function value(bytes: Uint8Array | undefined): Uint8Array {
  return bytes ? attrTable(bytes).get(NFTA_DATA_VALUE) ?? new Uint8Array(0) : new Uint8Array(0);
}

function describeExpr(name: string, data: Map<number, Uint8Array>): string {
  const n = (type: number) => {
    const bytes = data.get(type);
    return bytes ? u32be(bytes) : 0;
  };
  switch (name) {
    case "meta":
      return `[ meta load ${META_KEYS[n(NFTA_META_KEY)] ?? n(NFTA_META_KEY)} => reg ${
        n(NFTA_META_DREG)
      } ]`;
    case "cmp":
      return `[ cmp ${CMP_OPS[n(NFTA_CMP_OP)]} reg ${n(NFTA_CMP_SREG)} ${
        formatRegisterData(value(data.get(NFTA_CMP_DATA)))
      } ]`;
    case "payload": {
      const where = `${n(NFTA_PAYLOAD_LEN)}b @ ${BASES[n(NFTA_PAYLOAD_BASE)]} header + ${
        n(NFTA_PAYLOAD_OFFSET)
      }`;
      return data.has(NFTA_PAYLOAD_SREG)
        ? `[ payload write reg ${
          n(NFTA_PAYLOAD_SREG)
        } => ${where} csum_type 0 csum_off 0 csum_flags 0x0 ]`
        : `[ payload load ${where} => reg ${n(NFTA_PAYLOAD_DREG)} ]`;
    }
    case "immediate": {
      const immediate = attrTable(data.get(NFTA_IMMEDIATE_DATA) ?? new Uint8Array(0));
      const verdictAttr = immediate.get(NFTA_DATA_VERDICT);
      if (verdictAttr) {
        const code = u32be(attrTable(verdictAttr).get(NFTA_VERDICT_CODE)!);
        return `[ immediate reg ${n(NFTA_IMMEDIATE_DREG)} ${VERDICTS[code] ?? code} ]`;
      }
      return `[ immediate reg ${n(NFTA_IMMEDIATE_DREG)} ${
        formatRegisterData(immediate.get(NFTA_DATA_VALUE) ?? new Uint8Array(0))
      } ]`;
    }
    case "lookup": {
      const flags = n(NFTA_LOOKUP_FLAGS);
      return `[ lookup reg ${n(NFTA_LOOKUP_SREG)} set ${str(data.get(NFTA_LOOKUP_SET)!)}${
        flags ? ` 0x${flags.toString(16)}` : ""
      } ]`;
    }
    default:
      return `[ ${name} ]`;
  }
}

/**
 * A NEWRULE message's expressions in `nft --debug=netlink` notation, one per line, e.g.
 * `[ meta load iifname => reg 1 ]`.
 */
export function describeRule(message: BatchMessage): string[] {
  const attrs = attrTable(message.payload.subarray(4));
  const list = attrs.get(NFTA_RULE_EXPRESSIONS);
  if (!list) return [];
  return parseAttrs(list).map((element) => {
    const expr = attrTable(element.value);
    return describeExpr(
      str(expr.get(NFTA_EXPR_NAME)!),
      attrTable(expr.get(NFTA_EXPR_DATA) ?? new Uint8Array(0)),
    );
  });
}
