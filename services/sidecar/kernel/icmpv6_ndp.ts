/**
 * IPv6 Neighbor Discovery over Ethernet (RFC 4861): parse a Neighbor Solicitation, build the
 * Neighbor Advertisement that answers it, and the solicitation itself (tests, benchmarks).
 * Layout: Ethernet (14) | IPv6 header (40; next header 58, hop limit 255) | ICMPv6 type(1)
 * code(1) checksum(2) flags/reserved(4) target(16) | options: type(1) length in 8-byte units(1)
 * link-layer address(6). No extension headers: a solicitation that carries any is ignored.
 */

import { ETH_P_IPV6, ETHERNET_HEADER_BYTES, formatMac, parseMac } from "./ethernet.ts";
import { formatIpv6, parseIpv6 } from "./ipv6.ts";

export const IPPROTO_ICMPV6 = 58;
export const ND_NEIGHBOR_SOLICIT = 135;
export const ND_NEIGHBOR_ADVERT = 136;
/** Neighbor Discovery packets are sent, and accepted, only with hop limit 255 (RFC 4861 §7.1). */
export const ND_HOP_LIMIT = 255;
const IPV6_HEADER_BYTES = 40;
const ICMPV6_OFFSET = ETHERNET_HEADER_BYTES + IPV6_HEADER_BYTES;
const OPTION_SOURCE_LINK_ADDRESS = 1;
const OPTION_TARGET_LINK_ADDRESS = 2;
const NA_FLAG_SOLICITED = 0x40;
const NA_FLAG_OVERRIDE = 0x20;
/** ICMPv6 header (4) + reserved (4) + target (16). */
const ND_BODY_BYTES = 24;
const LINK_ADDRESS_OPTION_BYTES = 8;

export interface NeighborSolicitation {
  /** Ethernet source (who sent the frame). */
  ethernetSource: string;
  /** The asker's IPv6 address ("::" while it checks its own address for duplicates). */
  sourceIp: string;
  destinationIp: string;
  /** The address asked about. */
  target: string;
  /** The asker's link-layer address option, when present. */
  sourceLinkAddress?: string;
}

/** A well-formed Neighbor Solicitation, or null for anything else. */
export function parseNeighborSolicitation(frame: Uint8Array): NeighborSolicitation | null {
  if (frame.length < ICMPV6_OFFSET + ND_BODY_BYTES) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint16(12) !== ETH_P_IPV6 || frame[14] >> 4 !== 6) return null;
  if (frame[20] !== IPPROTO_ICMPV6 || frame[21] !== ND_HOP_LIMIT) return null;
  const payloadLength = view.getUint16(18);
  if (payloadLength < ND_BODY_BYTES || ICMPV6_OFFSET + payloadLength > frame.length) return null;
  if (frame[ICMPV6_OFFSET] !== ND_NEIGHBOR_SOLICIT || frame[ICMPV6_OFFSET + 1] !== 0) return null;
  const solicitation: NeighborSolicitation = {
    ethernetSource: formatMac(frame.subarray(6, 12)),
    sourceIp: formatIpv6(frame.subarray(22, 38)),
    destinationIp: formatIpv6(frame.subarray(38, 54)),
    target: formatIpv6(frame.subarray(ICMPV6_OFFSET + 8, ICMPV6_OFFSET + 24)),
  };
  // Options: each at least 8 bytes; a zero length is malformed (RFC 4861 §4.6).
  const end = ICMPV6_OFFSET + payloadLength;
  for (let at = ICMPV6_OFFSET + ND_BODY_BYTES; at + 2 <= end;) {
    const length = frame[at + 1] * 8;
    if (length === 0 || at + length > end) return null;
    if (frame[at] === OPTION_SOURCE_LINK_ADDRESS && length >= LINK_ADDRESS_OPTION_BYTES) {
      solicitation.sourceLinkAddress = formatMac(frame.subarray(at + 2, at + 8));
    }
    at += length;
  }
  return solicitation;
}

/**
 * The advertisement answering `solicitation` for `target`: "`target` is at `mac`", from
 * `target`, to the asker's address and MAC (solicited, override).
 */
export function buildNeighborAdvertisement(
  solicitation: NeighborSolicitation,
  target: string,
  mac: string,
): Uint8Array<ArrayBuffer> {
  const ours = parseMac(mac);
  const askerMac = parseMac(solicitation.sourceLinkAddress ?? solicitation.ethernetSource);
  const body = new Uint8Array(ND_BODY_BYTES + LINK_ADDRESS_OPTION_BYTES);
  body[0] = ND_NEIGHBOR_ADVERT;
  body[4] = NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE;
  body.set(parseIpv6(target), 8);
  body[24] = OPTION_TARGET_LINK_ADDRESS;
  body[25] = 1;
  body.set(ours, 26);
  return ipv6Frame(askerMac, ours, parseIpv6(target), parseIpv6(solicitation.sourceIp), body);
}

/** A solicitation for `target` from `sourceIp`/`sourceMac` to its solicited-node group. */
export function buildNeighborSolicitation(
  sourceMac: string,
  sourceIp: string,
  target: string,
): Uint8Array<ArrayBuffer> {
  const targetBytes = parseIpv6(target);
  const group = parseIpv6("ff02::1:ff00:0");
  group.set(targetBytes.subarray(13), 13);
  const groupMac = Uint8Array.of(0x33, 0x33, 0xff, ...targetBytes.subarray(13));
  const body = new Uint8Array(ND_BODY_BYTES + LINK_ADDRESS_OPTION_BYTES);
  body[0] = ND_NEIGHBOR_SOLICIT;
  body.set(targetBytes, 8);
  body[24] = OPTION_SOURCE_LINK_ADDRESS;
  body[25] = 1;
  body.set(parseMac(sourceMac), 26);
  return ipv6Frame(groupMac, parseMac(sourceMac), parseIpv6(sourceIp), group, body);
}

function ipv6Frame(
  destinationMac: Uint8Array,
  sourceMac: Uint8Array,
  sourceIp: Uint8Array,
  destinationIp: Uint8Array,
  icmp: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const frame = new Uint8Array(ICMPV6_OFFSET + icmp.length);
  const view = new DataView(frame.buffer);
  frame.set(destinationMac, 0);
  frame.set(sourceMac, 6);
  view.setUint16(12, ETH_P_IPV6);
  frame[14] = 0x60; // version 6, traffic class 0, flow label 0
  view.setUint16(18, icmp.length);
  frame[20] = IPPROTO_ICMPV6;
  frame[21] = ND_HOP_LIMIT;
  frame.set(sourceIp, 22);
  frame.set(destinationIp, 38);
  frame.set(icmp, ICMPV6_OFFSET);
  view.setUint16(ICMPV6_OFFSET + 2, icmpv6Checksum(sourceIp, destinationIp, icmp));
  return frame;
}

/**
 * The ICMPv6 checksum (RFC 4443 §2.3): the one's complement sum over the pseudo-header
 * (source, destination, upper-layer length, next header 58) and the message, whose checksum
 * field must be zero.
 */
export function icmpv6Checksum(
  sourceIp: Uint8Array,
  destinationIp: Uint8Array,
  message: Uint8Array,
): number {
  let sum = 0;
  const add = (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  };
  add(sourceIp);
  add(destinationIp);
  sum += message.length >>> 16;
  sum += message.length & 0xffff;
  sum += IPPROTO_ICMPV6;
  add(message);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
