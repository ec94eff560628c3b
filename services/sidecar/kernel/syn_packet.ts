/**
 * IPv4 TCP SYN frames over Ethernet II: the first packet of a guest's connection to the
 * metadata address, read to learn who is connecting and through which port.
 * Layout: dst MAC(6) src MAC(6) ethertype 0x0800(2) | IPv4 header (IHL × 4 bytes) | TCP header.
 */

import { ETH_P_IP, formatMac, parseMac } from "./ethernet.ts";
import { formatIpv4, parseIpv4 } from "./ipv4.ts";

const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

export interface TcpSyn {
  /** Ethernet source: the guest's MAC. */
  ethernetSource: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
}

/** A connection request (SYN without ACK, unfragmented IPv4), or null for anything else. */
export function parseTcpSyn(frame: Uint8Array): TcpSyn | null {
  if (frame.length < 14 + 20) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint16(12) !== ETH_P_IP) return null;
  const versionAndLength = frame[14];
  const headerBytes = (versionAndLength & 0xf) * 4;
  if (versionAndLength >> 4 !== 4 || headerBytes < 20) return null;
  if (frame[14 + 9] !== IPPROTO_TCP || (view.getUint16(14 + 6) & 0x1fff) !== 0) return null;
  const tcp = 14 + headerBytes;
  if (frame.length < tcp + 14) return null;
  if ((frame[tcp + 13] & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return null;
  return {
    ethernetSource: formatMac(frame.subarray(6, 12)),
    sourceIp: formatIpv4(frame.subarray(14 + 12, 14 + 16)),
    destinationIp: formatIpv4(frame.subarray(14 + 16, 14 + 20)),
    destinationPort: view.getUint16(tcp + 2),
  };
}

/** The Internet checksum (RFC 1071) of `bytes`, continuing from `initial`. */
function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * A copy of the IPv4/TCP `frame` sent to `mac` instead, with its TCP checksum computed. A
 * packet socket sees a guest's frame before its checksum is filled in when the guest's NIC
 * offloads it (veth, virtio), and a frame handed back to the kernel must carry a correct one.
 */
export function readdressFrame(frame: Uint8Array, mac: string): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(frame);
  copy.set(parseMac(mac), 0);
  const view = new DataView(copy.buffer);
  const headerBytes = (copy[14] & 0xf) * 4;
  const end = Math.min(copy.length, 14 + view.getUint16(14 + 2));
  const tcp = 14 + headerBytes;
  if (tcp + 18 > end) return copy;
  view.setUint16(tcp + 16, 0);
  const pseudo = new Uint8Array(12);
  pseudo.set(copy.subarray(14 + 12, 14 + 20), 0);
  pseudo[9] = IPPROTO_TCP;
  new DataView(pseudo.buffer).setUint16(10, end - tcp);
  const sum = onesComplementSum(copy.subarray(tcp, end), onesComplementSum(pseudo));
  view.setUint16(tcp + 16, ~sum & 0xffff);
  return copy;
}

/** Options of a SYN frame built for tests and benchmarks. */
export interface SynFrameOptions {
  sourceMac: string;
  destinationMac: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
  /** TCP flags; a plain SYN unless given. */
  flags?: number;
  /** IPv4 flags + fragment offset field. */
  fragment?: number;
}

/** A 54-byte Ethernet + IPv4 + TCP frame (valid IPv4 header checksum, TCP checksum 0). */
export function buildTcpSyn(options: SynFrameOptions): Uint8Array<ArrayBuffer> {
  const frame = new Uint8Array(54);
  const view = new DataView(frame.buffer);
  frame.set(parseMac(options.destinationMac), 0);
  frame.set(parseMac(options.sourceMac), 6);
  view.setUint16(12, ETH_P_IP);
  frame[14] = 0x45;
  view.setUint16(16, 40); // total length
  view.setUint16(20, options.fragment ?? 0x4000); // don't fragment
  frame[22] = 64; // TTL
  frame[23] = IPPROTO_TCP;
  frame.set(parseIpv4(options.sourceIp), 26);
  frame.set(parseIpv4(options.destinationIp), 30);
  view.setUint16(24, ~onesComplementSum(frame.subarray(14, 34)) & 0xffff);
  view.setUint16(34, 40000); // source port
  view.setUint16(36, options.destinationPort);
  view.setUint32(38, 1); // sequence number
  frame[46] = 5 << 4; // data offset
  frame[47] = options.flags ?? TCP_SYN;
  view.setUint16(48, 64240); // window
  return frame;
}
