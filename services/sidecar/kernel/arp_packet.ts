/**
 * Ethernet ARP frames (RFC 826 over Ethernet II): parse a request, build the reply.
 * Layout: dst MAC(6) src MAC(6) ethertype 0x0806(2) | htype 1(2) ptype 0x0800(2) hlen 6(1)
 * plen 4(1) op(2) sender MAC(6) sender IP(4) target MAC(6) target IP(4) — 42 bytes.
 */

import { ETH_P_ARP, ETH_P_IP, formatMac, parseMac } from "./ethernet.ts";
import { formatIpv4, parseIpv4 } from "./ipv4.ts";

export const ARP_FRAME_BYTES = 42;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface ArpPacket {
  op: number;
  /** Ethernet source (who sent the frame). */
  ethernetSource: string;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** An IPv4-over-Ethernet ARP packet, or null for anything else (other ethertypes, sizes). */
export function parseArpFrame(frame: Uint8Array): ArpPacket | null {
  if (frame.length < ARP_FRAME_BYTES) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint16(12) !== ETH_P_ARP) return null;
  if (view.getUint16(14) !== 1 || view.getUint16(16) !== ETH_P_IP) return null;
  if (frame[18] !== 6 || frame[19] !== 4) return null;
  return {
    op: view.getUint16(20),
    ethernetSource: formatMac(frame.subarray(6, 12)),
    senderMac: formatMac(frame.subarray(22, 28)),
    senderIp: formatIpv4(frame.subarray(28, 32)),
    targetMac: formatMac(frame.subarray(32, 38)),
    targetIp: formatIpv4(frame.subarray(38, 42)),
  };
}

/** Whether a parsed packet is a who-has for `address` that deserves an answer. */
export function isRequestFor(packet: ArpPacket, address: string): boolean {
  return packet.op === ARP_REQUEST && packet.targetIp === address &&
    // Someone announcing the address as its own (gratuitous ARP) is not asking.
    packet.senderIp !== address;
}

/** The reply to `request`: "`address` is at `mac`", sent straight back to the asker. */
export function buildArpReply(
  request: ArpPacket,
  address: string,
  mac: string,
): Uint8Array<ArrayBuffer> {
  const ours = parseMac(mac);
  const asker = parseMac(request.senderMac);
  return buildArpFrame(
    ARP_REPLY,
    asker,
    ours,
    parseIpv4(address),
    asker,
    parseIpv4(request.senderIp),
  );
}

/** A who-has request frame (broadcast), for tests and benchmarks. */
export function buildArpRequest(
  senderMac: string,
  senderIp: string,
  targetIp: string,
): Uint8Array<ArrayBuffer> {
  const sender = parseMac(senderMac);
  return buildArpFrame(
    ARP_REQUEST,
    BROADCAST_MAC,
    sender,
    parseIpv4(senderIp),
    ZERO_MAC,
    parseIpv4(targetIp),
  );
}

const BROADCAST_MAC = new Uint8Array(6).fill(0xff);
const ZERO_MAC = new Uint8Array(6);

/** An Ethernet frame carrying an IPv4-over-Ethernet ARP packet (RFC 826 layout). */
function buildArpFrame(
  operation: number,
  destination: Uint8Array,
  senderMac: Uint8Array,
  senderIp: Uint8Array,
  targetMac: Uint8Array,
  targetIp: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const frame = new Uint8Array(ARP_FRAME_BYTES);
  const view = new DataView(frame.buffer);
  frame.set(destination, 0);
  frame.set(senderMac, 6);
  view.setUint16(12, ETH_P_ARP);
  view.setUint16(14, 1); // hardware type: Ethernet
  view.setUint16(16, ETH_P_IP);
  frame[18] = 6; // hardware address length
  frame[19] = 4; // protocol address length
  view.setUint16(20, operation);
  frame.set(senderMac, 22);
  frame.set(senderIp, 28);
  frame.set(targetMac, 32);
  frame.set(targetIp, 38);
  return frame;
}

/**
 * A gratuitous ARP announcing "`address` is at `mac`" (RFC 5227: a request whose sender and
 * target are both `address`). Guests update an existing neighbour entry from it, so one that
 * cached another MAC for the address switches to `mac`.
 */
export function buildArpAnnouncement(mac: string, address: string): Uint8Array<ArrayBuffer> {
  return buildArpRequest(mac, address, address);
}
