/**
 * A classic BPF socket filter that lets through only ARP who-has requests for one IPv4
 * address, so a packet socket listening on every interface receives nothing else.
 * (struct sock_filter: code u16, jt u8, jf u8, k u32; offsets are into the Ethernet frame.)
 */

import { parseIpv4 } from "./rtnetlink.ts";

const BPF_LD_H_ABS = 0x28;
const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_RET_K = 0x06;

/** The filter program: ethertype 0x0806, ARP op 1 (request), target protocol address. */
export function arpRequestFilter(address: string): Uint8Array<ArrayBuffer> {
  const ip = parseIpv4(address);
  const target = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
  // [code, jt, jf, k]; a false test jumps to the last instruction (drop).
  const program: [number, number, number, number][] = [
    [BPF_LD_H_ABS, 0, 0, 12], // 0: ethertype
    [BPF_JEQ_K, 0, 5, 0x0806], // 1: ARP?
    [BPF_LD_H_ABS, 0, 0, 20], // 2: ARP operation
    [BPF_JEQ_K, 0, 3, 1], // 3: request?
    [BPF_LD_W_ABS, 0, 0, 38], // 4: target protocol address
    [BPF_JEQ_K, 0, 1, target], // 5: ours?
    [BPF_RET_K, 0, 0, 0xffff], // 6: keep the frame
    [BPF_RET_K, 0, 0, 0], // 7: drop
  ];
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  return bytes;
}

/** Runs a filter program over a frame the way the kernel does (for tests). */
export function runFilter(program: Uint8Array, frame: Uint8Array): number {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const data = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let accumulator = 0;
  for (let pc = 0; pc * 8 < program.length;) {
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2);
    const jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    switch (code) {
      case BPF_LD_H_ABS:
        if (k + 2 > frame.length) return 0;
        accumulator = data.getUint16(k);
        pc++;
        break;
      case BPF_LD_W_ABS:
        if (k + 4 > frame.length) return 0;
        accumulator = data.getUint32(k);
        pc++;
        break;
      case BPF_JEQ_K:
        pc += 1 + (accumulator === k ? jt : jf);
        break;
      case BPF_RET_K:
        return k;
      default:
        throw new Error(`unsupported BPF instruction 0x${code.toString(16)}`);
    }
  }
  return 0;
}
