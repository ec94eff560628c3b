/**
 * ARP round-trip prober, run inside a guest namespace: sends who-has requests
 * for a target out of one interface over an AF_PACKET socket and times each
 * reply, per responding MAC (on a KubeVirt bridge both the kernel, through the
 * bridge device, and the sidecar's responder may answer the same request).
 *
 *   ip netns exec <guest> deno run -A arp_probe.ts <iface> <source ip> <target ip> <count>
 *
 * Prints one JSON object: { sent, replies: { "<mac>": [ms, ...] } }.
 */
import {
  ARP_REPLY,
  buildArpRequest,
  parseArpFrame,
} from "../../services/sidecar/kernel/arp_packet.ts";
import {
  AF_PACKET,
  check,
  interfaceIndex,
  libc,
  MSG_DONTWAIT,
  pollForInput,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  sockaddrLl,
} from "../../services/sidecar/kernel/libc.ts";
import { ETH_P_ARP } from "../../services/sidecar/kernel/ethernet.ts";
import { printResult, runScript } from "./harness.ts";

export interface ProbeResult {
  sent: number;
  replies: Record<string, number[]>;
}

/** A nonblocking AF_PACKET socket that sees the ARP frames of interface `name` only. */
function openArpSocket(name: string): number {
  const index = interfaceIndex(name);
  if (index === 0) throw new Error(`no interface named ${name}`);
  const fd = check("socket", libc().socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const address = sockaddrLl(index, ETH_P_ARP);
  check("bind", libc().bind(fd, address, address.length));
  return fd;
}

function interfaceMac(name: string): string {
  return Deno.readTextFileSync(`/sys/class/net/${name}/address`).trim();
}

/** Sends `count` requests one after another; each waits up to `windowMs` for every responder. */
export function probeArp(
  iface: string,
  sourceIp: string,
  targetIp: string,
  count: number,
  windowMs = 20,
): ProbeResult {
  const fd = openArpSocket(iface);
  const request = buildArpRequest(interfaceMac(iface), sourceIp, targetIp);
  const buffer = new Uint8Array(1600);
  const pollfds = pollForInput([fd]);
  const replies: Record<string, number[]> = {};
  let responders = 0;

  const drain = () => {
    while (Number(libc().recv(fd, buffer, BigInt(buffer.length), MSG_DONTWAIT)) > 0) { /* old */ }
  };

  try {
    for (let round = 0; round < count; round++) {
      drain();
      const seen = new Set<string>();
      const started = performance.now();
      libc().send(fd, request, BigInt(request.length), 0);
      // The first round learns how many responders there are; later rounds stop once all answered.
      const window = round === 0 ? 200 : windowMs;
      while (round === 0 || seen.size < responders) {
        const left = Math.ceil(started + window - performance.now());
        if (left <= 0) break;
        if (libc().poll(pollfds.bytes, pollfds.count, left) <= 0) continue;
        const length = Number(libc().recv(fd, buffer, BigInt(buffer.length), MSG_DONTWAIT));
        const elapsed = performance.now() - started;
        if (length <= 0) continue;
        const packet = parseArpFrame(buffer.subarray(0, length));
        if (
          !packet || packet.op !== ARP_REPLY || packet.senderIp !== targetIp ||
          packet.targetIp !== sourceIp || seen.has(packet.senderMac)
        ) continue;
        seen.add(packet.senderMac);
        (replies[packet.senderMac] ??= []).push(elapsed);
      }
      if (round === 0) responders = seen.size;
    }
  } finally {
    libc().close(fd);
  }
  return { sent: count, replies };
}

export interface ProbeRequest {
  /** The guest interface to send from. */
  iface: string;
  sourceIp: string;
  targetIp: string;
  count: number;
}

/** Runs the prober in namespace `ns` (a fresh process there); its typed result. */
export async function runArpProbe(ns: string, request: ProbeRequest): Promise<ProbeResult> {
  const { iface, sourceIp, targetIp, count } = request;
  const args = [iface, sourceIp, targetIp, String(count)];
  return (await runScript<ProbeResult>(new URL(import.meta.url), args, { namespace: ns })).result;
}

if (import.meta.main) {
  const [iface, sourceIp, targetIp, count] = Deno.args;
  if (!iface || !sourceIp || !targetIp) {
    console.error("usage: arp_probe.ts <iface> <source ip> <target ip> [count]");
    Deno.exit(2);
  }
  printResult(probeArp(iface, sourceIp, targetIp, Number(count ?? 100)));
}
