/**
 * A classic BPF socket filter for the responder's packet socket, which listens on every
 * interface: it lets through only
 * - ARP who-has requests for one IPv4 address (answered), and
 * - IPv4 TCP SYNs (SYN set, ACK clear, not a fragment) to that address (a guest that took the
 *   address's MAC from an announcement connects without ever asking: its first SYN is where
 *   the way back to it is learned), and
 * - when an IPv6 address is given, ICMPv6 Neighbor Solicitations for it (hop limit 255, no
 *   extension headers), to its solicited-node group or unicast.
 * Everything else is dropped in the kernel. (struct sock_filter: code u16, jt u8, jf u8, k u32;
 * offsets are into the Ethernet frame.)
 */

import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6 } from "./ethernet.ts";
import { ND_HOP_LIMIT, ND_NEIGHBOR_SOLICIT } from "./icmpv6_ndp.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";

const BPF_LD_B_ABS = 0x30;
const BPF_LD_H_ABS = 0x28;
const BPF_LD_W_ABS = 0x20;
const BPF_LD_B_IND = 0x50;
const BPF_LDX_B_MSH = 0xb1;
const BPF_ALU_AND_K = 0x54;
const BPF_JEQ_K = 0x15;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
/** Ethernet header + offset of the flags byte in the TCP header. */
const TCP_FLAGS_AFTER_IP_HEADER = 14 + 13;

type Jump = number | string;
/** One instruction; jumps name a label (or are relative counts, as in the kernel). */
type Instruction = { label?: string; code: number; jt?: Jump; jf?: Jump; k?: number };

function assemble(instructions: Instruction[]): Uint8Array<ArrayBuffer> {
  const labels = new Map<string, number>();
  instructions.forEach((instruction, i) => {
    if (instruction.label) labels.set(instruction.label, i);
  });
  const offset = (jump: Jump | undefined, at: number): number => {
    if (jump === undefined) return 0;
    if (typeof jump === "number") return jump;
    const target = labels.get(jump);
    if (target === undefined || target <= at) throw new Error(`bad BPF jump to ${jump}`);
    return target - at - 1;
  };
  const bytes = new Uint8Array(instructions.length * 8);
  const view = new DataView(bytes.buffer);
  instructions.forEach((instruction, i) => {
    view.setUint16(i * 8, instruction.code, true);
    view.setUint8(i * 8 + 2, offset(instruction.jt, i));
    view.setUint8(i * 8 + 3, offset(instruction.jf, i));
    view.setUint32(i * 8 + 4, (instruction.k ?? 0) >>> 0, true);
  });
  return bytes;
}

/** Offsets in an Ethernet frame carrying IPv6: next header, hop limit, ICMPv6 type, NS target. */
const IPV6_NEXT_HEADER = 20;
const IPV6_HOP_LIMIT = 21;
const ICMPV6_TYPE = 54;
const NS_TARGET = 62;
const IPPROTO_ICMPV6 = 58;

/**
 * The filter program: ARP who-has for `address`, a TCP SYN to `address`, or (with
 * `solicitedAddress`) an IPv6 Neighbor Solicitation for `solicitedAddress`.
 */
export function metadataTrafficFilter(
  address: string,
  solicitedAddress?: string,
): Uint8Array<ArrayBuffer> {
  const ip = parseIpv4(address);
  const target = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
  const ipv6: Instruction[] = [];
  if (solicitedAddress !== undefined) {
    const bytes = parseIpv6(solicitedAddress);
    const view = new DataView(bytes.buffer);
    ipv6.push(
      { label: "ipv6", code: BPF_JEQ_K, k: ETH_P_IPV6, jf: "drop" },
      { code: BPF_LD_B_ABS, k: IPV6_NEXT_HEADER },
      { code: BPF_JEQ_K, k: IPPROTO_ICMPV6, jf: "drop" },
      { code: BPF_LD_B_ABS, k: IPV6_HOP_LIMIT },
      { code: BPF_JEQ_K, k: ND_HOP_LIMIT, jf: "drop" },
      { code: BPF_LD_B_ABS, k: ICMPV6_TYPE },
      { code: BPF_JEQ_K, k: ND_NEIGHBOR_SOLICIT, jf: "drop" },
      ...[0, 4, 8, 12].flatMap((at, i): Instruction[] => [
        { code: BPF_LD_W_ABS, k: NS_TARGET + at },
        { code: BPF_JEQ_K, k: view.getUint32(at), jt: i === 3 ? "keep" : 0, jf: "drop" },
      ]),
    );
  }
  const notIpv4 = solicitedAddress === undefined ? "drop" : "ipv6";
  return assemble([
    { code: BPF_LD_H_ABS, k: 12 }, // ethertype
    { code: BPF_JEQ_K, k: ETH_P_ARP, jf: "ipv4" },
    { code: BPF_LD_H_ABS, k: 20 }, // ARP operation
    { code: BPF_JEQ_K, k: 1, jf: "drop" }, // request?
    { code: BPF_LD_W_ABS, k: 38 }, // target protocol address
    { code: BPF_JEQ_K, k: target, jt: "keep", jf: "drop" },
    { label: "ipv4", code: BPF_JEQ_K, k: ETH_P_IP, jf: notIpv4 },
    { code: BPF_LD_W_ABS, k: 30 }, // destination address
    { code: BPF_JEQ_K, k: target, jf: "drop" },
    { code: BPF_LD_B_ABS, k: 23 }, // protocol
    { code: BPF_JEQ_K, k: IPPROTO_TCP, jf: "drop" },
    { code: BPF_LD_H_ABS, k: 20 }, // flags + fragment offset
    { code: BPF_JSET_K, k: 0x1fff, jt: "drop" }, // a later fragment has no TCP header
    { code: BPF_LDX_B_MSH, k: 14 }, // X = IP header length
    { code: BPF_LD_B_IND, k: TCP_FLAGS_AFTER_IP_HEADER },
    { code: BPF_ALU_AND_K, k: TCP_SYN | TCP_ACK },
    { code: BPF_JEQ_K, k: TCP_SYN, jf: "drop", jt: solicitedAddress === undefined ? 0 : "keep" },
    ...ipv6,
    { label: "keep", code: BPF_RET_K, k: 0xffff },
    { label: "drop", code: BPF_RET_K, k: 0 },
  ]);
}

/** Runs a filter program over a frame the way the kernel does (for tests). */
export function runFilter(program: Uint8Array, frame: Uint8Array): number {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const data = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let accumulator = 0;
  let index = 0;
  const load = (at: number, size: 1 | 2 | 4): number | undefined => {
    if (at < 0 || at + size > frame.length) return undefined;
    return size === 1 ? data.getUint8(at) : size === 2 ? data.getUint16(at) : data.getUint32(at);
  };
  for (let pc = 0; pc * 8 < program.length;) {
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2);
    const jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    let loaded: number | undefined;
    switch (code) {
      case BPF_LD_B_ABS:
      case BPF_LD_H_ABS:
      case BPF_LD_W_ABS:
      case BPF_LD_B_IND:
        loaded = load(
          code === BPF_LD_B_IND ? index + k : k,
          code === BPF_LD_H_ABS ? 2 : code === BPF_LD_W_ABS ? 4 : 1,
        );
        if (loaded === undefined) return 0; // out of the frame: the kernel drops it
        accumulator = loaded;
        pc++;
        break;
      case BPF_LDX_B_MSH:
        loaded = load(k, 1);
        if (loaded === undefined) return 0;
        index = (loaded & 0xf) * 4;
        pc++;
        break;
      case BPF_ALU_AND_K:
        accumulator = (accumulator & k) >>> 0;
        pc++;
        break;
      case BPF_JEQ_K:
        pc += 1 + (accumulator === k ? jt : jf);
        break;
      case BPF_JSET_K:
        pc += 1 + ((accumulator & k) !== 0 ? jt : jf);
        break;
      case BPF_RET_K:
        return k;
      default:
        throw new Error(`unsupported BPF instruction 0x${code.toString(16)}`);
    }
  }
  return 0;
}
