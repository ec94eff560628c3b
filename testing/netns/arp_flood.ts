/**
 * A guest flooding its NIC with spoofed senders, run inside the guest's namespace: `count`
 * ARP who-has requests for a target, each from a different link-local address and a different
 * random MAC (as Ethernet source and ARP sender), paced `gapUs` microseconds apart.
 *
 *   ip netns exec <guest> deno run -A arp_flood.ts '{"iface": "eth0", "targetIp": ..., "count": 2000}'
 *
 * Prints one JSON object: { sent, ms, first, last } (the first and last spoofed address).
 */
import { buildArpRequest } from "../../services/sidecar/kernel/arp_packet.ts";
import {
  AF_PACKET,
  check,
  interfaceIndex,
  libc,
  SOCK_CLOEXEC,
  SOCK_RAW,
  sockaddrLl,
} from "../../services/sidecar/kernel/libc.ts";
import { ETH_P_ARP } from "../../services/sidecar/kernel/ethernet.ts";
import { printResult, runScript, scriptInput } from "./harness.ts";
import { randomMac } from "./lab.ts";

export interface FloodRequest {
  iface: string;
  targetIp: string;
  count: number;
  /** Pause between frames (default 500 µs: 2,000 senders a second). */
  gapUs?: number;
}

export interface FloodResult {
  sent: number;
  ms: number;
  first: string;
  last: string;
}

/** The n-th spoofed sender: 169.254.10.1, …, 169.254.10.250, 169.254.11.1, … */
export function spoofedAddress(n: number): string {
  return `169.254.${10 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}

export function flood(request: FloodRequest): FloodResult {
  const index = interfaceIndex(request.iface);
  if (index === 0) throw new Error(`no interface named ${request.iface}`);
  const fd = check("socket", libc().socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  const to = sockaddrLl(index, ETH_P_ARP);
  const gapMs = (request.gapUs ?? 500) / 1000;
  let sent = 0;
  const started = performance.now();
  try {
    for (let n = 0; n < request.count; n++) {
      const frame = buildArpRequest(randomMac(), spoofedAddress(n), request.targetIp);
      const result = libc().sendto(fd, frame, BigInt(frame.length), 0, to, to.length);
      if (Number(result) === frame.length) sent++;
      const due = started + (n + 1) * gapMs;
      while (performance.now() < due) { /* paced: a busy wait keeps the gaps short and even */ }
    }
  } finally {
    libc().close(fd);
  }
  return {
    sent,
    ms: Math.round(performance.now() - started),
    first: spoofedAddress(0),
    last: spoofedAddress(request.count - 1),
  };
}

/** Runs the flood in namespace `ns` (a fresh process there); its typed result. */
export async function runArpFlood(ns: string, request: FloodRequest): Promise<FloodResult> {
  const script = new URL(import.meta.url);
  return (await runScript<FloodResult>(script, [JSON.stringify(request)], { namespace: ns }))
    .result;
}

if (import.meta.main) printResult(flood(scriptInput<FloodRequest>()));
