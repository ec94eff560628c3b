/**
 * Scenarios run by tests inside a private network namespace (see harness.ts):
 * `deno run -A testing/netns/scenarios.ts <name>` prints one JSON line with what it observed; the
 * test asserts on it. Set-up that the sidecar never does itself (creating bridges, the
 * guest's side) uses iproute2; checks use it too, as a second opinion on what netlink did.
 */

import { createLogger, type Logger } from "../../services/shared/log.ts";
import {
  type ArpPacket,
  buildArpRequest,
  parseArpFrame,
} from "../../services/sidecar/kernel/arp_packet.ts";
import {
  type ArpTarget,
  startArpResponder,
} from "../../services/sidecar/datapath/arp_responder.ts";
import { attachToBridge, ensureLoopbackAddress } from "../../services/sidecar/datapath/attach.ts";
import { routedGuests } from "../../services/sidecar/datapath/guest_routes.ts";
import {
  AF_PACKET,
  check,
  isSyscallError,
  libc,
  PACKET_OUTGOING,
  pollForInput,
  receiveFrom,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  sockaddrLl,
  sockaddrLlPacketType,
} from "../../services/sidecar/kernel/libc.ts";
import { ETH_P_ARP } from "../../services/sidecar/kernel/ethernet.ts";
import {
  addIpv4Address,
  addRule,
  createVethPair,
  deleteLink,
  deleteRoute,
  deleteRule,
  findLink,
  IPV4_DEVCONF,
  type Link,
  listIpv4Addresses,
  listNeighbours,
  listRoutes,
  listRules,
  replaceNeighbour,
  replaceRoute,
  setIpv4Conf,
  setLink,
} from "../../services/sidecar/kernel/rtnetlink.ts";
import { buildTcpSyn } from "../../services/sidecar/kernel/syn_packet.ts";
import { deleteFdbEntry, fdbPortOf, listFdb, replaceFdbEntry } from "./fdb.ts";

function sh(...args: string[]): string {
  const output = new Deno.Command(args[0], { args: args.slice(1) }).outputSync();
  if (!output.success) {
    throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

function link(name: string): Link {
  const found = findLink(name);
  if (!found) throw new Error(`no interface ${name}`);
  return found;
}

function capturingLogger(): { log: Logger; messages: string[] } {
  const messages: string[] = [];
  const log = createLogger({
    component: "test",
    level: "debug",
    sink: (line) => messages.push(JSON.parse(line).msg),
  });
  return { log, messages };
}

/** A host's view of one interface: a packet socket for its ARP frames. */
function arpSocket(name: string): number {
  const fd = check("socket", libc().socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const address = sockaddrLl(link(name).index, ETH_P_ARP);
  check("bind", libc().bind(fd, address, address.length));
  return fd;
}

/**
 * Sends `frame` (if any) on packet socket `fd`, then collects for `waitMs` the ARP frames that
 * arrive (not our own): replies, or announcements (a request from an address for itself).
 */
async function exchange(
  fd: number,
  frame: Uint8Array<ArrayBuffer> | null,
  waitMs: number,
  kind: "replies" | "announcements" = "replies",
) {
  if (frame) libc().send(fd, frame, BigInt(frame.length), 0);
  const seen: ArpPacket[] = [];
  const pollfds = pollForInput([fd]);
  const buffer = new Uint8Array(2048);
  const from = new Uint8Array(20);
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    const ready = await libc().pollAsync(
      pollfds.bytes,
      pollfds.count,
      Math.max(1, until - Date.now()),
    );
    if (ready <= 0) continue;
    for (;;) {
      const received = receiveFrom(fd, buffer, from);
      if (received <= 0) break;
      if (sockaddrLlPacketType(from) === PACKET_OUTGOING) continue;
      const packet = parseArpFrame(buffer.subarray(0, received));
      if (!packet) continue;
      const announcement = packet.op === 1 && packet.senderIp === packet.targetIp;
      if (kind === "replies" ? packet.op === 2 : announcement) seen.push(packet);
    }
  }
  return seen;
}

/**
 * A Multus-like bridge k6t-net1: the VM (vm1, behind tap1) and another host (far1, behind the
 * uplink net1-nic), each with a packet socket; the sidecar attached; a responder started but
 * not yet told about the bridge (`target` is what it should serve).
 */
function multusLikeBridge() {
  sh("ip", "link", "set", "lo", "up");
  sh("ip", "link", "add", "k6t-net1", "type", "bridge");
  for (
    const [port, peer, mac] of [["tap1", "vm1", "62:27:19:f3:0a:ef"], [
      "net1-nic",
      "far1",
      "62:27:19:f3:0a:f0",
    ]]
  ) {
    sh("ip", "link", "add", port, "type", "veth", "peer", "name", peer);
    sh("ip", "link", "set", peer, "address", mac, "up");
    sh("ip", "link", "set", port, "master", "k6t-net1", "up");
    // The far ends stand in for hosts in other namespaces: this kernel must not answer there.
    setIpv4Conf(link(peer).index, { arp_ignore: 8 });
  }
  sh("ip", "link", "set", "k6t-net1", "up");
  const { log } = capturingLogger();
  ensureLoopbackAddress(log);
  const attachment = attachToBridge(link("k6t-net1"), log);
  // The hosts listen before the responder starts, to hear its announcements.
  const vm = arpSocket("vm1");
  const far = arpSocket("far1");
  const responder = startArpResponder("169.254.169.254", "debug");
  const target: ArpTarget = {
    bridge: "k6t-net1",
    sidecarIndex: attachment.sidecar.index,
    sidecarName: attachment.sidecar.name,
    bridgeSideIndex: attachment.bridgeSide.index,
    mac: attachment.sidecar.mac,
    address: "169.254.169.254",
    vmPorts: [link("tap1").index],
    otherPorts: [{ index: link("net1-nic").index, name: "net1-nic" }],
    learnRoutes: true,
  };
  return { vm, far, responder, target, attachment };
}

const scenarios: Record<string, () => unknown> = {
  /** Every rtnetlink operation the sidecar and the interception use, checked with iproute2. */
  rtnetlink() {
    sh("ip", "link", "set", "lo", "up");
    sh("ip", "link", "add", "br0", "type", "bridge");
    createVethPair("va", "vb");
    const bridge = link("br0");
    const a = link("va");
    const b = link("vb");
    setLink(a.index, { mac: "02:11:22:33:44:55", mtu: 1400, up: true }, "va");
    setLink(b.index, { master: bridge.index, up: true }, "vb");
    setIpv4Conf(a.index, { arp_ignore: 8, arp_announce: 2, rp_filter: 0, accept_local: 1 });
    const a2 = link("va");
    const added = [
      addIpv4Address(a.index, "169.254.169.254/32"),
      addIpv4Address(a.index, "169.254.169.254/32"),
    ];
    replaceRoute({ destination: "169.254.100.100/32", device: a.index, source: "169.254.169.254" });
    replaceRoute({ destination: "10.244.0.7/32", device: a.index, table: 169254 });
    const routes = sh("ip", "-4", "route", "show", "table", "all");
    const routeDeleted = [
      deleteRoute({ destination: "10.244.0.7/32", device: a.index, table: 169254 }),
      deleteRoute({ destination: "10.244.0.7/32", device: a.index, table: 169254 }),
    ];
    const ruleAdded = [
      addRule({ priority: 100, table: 169254, from: "169.254.169.254/32", protocol: 4 }),
      addRule({ priority: 100, table: 169254, from: "169.254.169.254/32", protocol: 4 }),
    ];
    const rules = listRules();
    const ipRules = sh("ip", "rule");
    const ruleDeleted = [
      deleteRule({ priority: 100, table: 169254, from: "169.254.169.254/32" }),
      deleteRule({ priority: 100, table: 169254, from: "169.254.169.254/32" }),
    ];
    replaceNeighbour({ index: a.index, address: "169.254.100.100", mac: "62:27:19:f3:0a:ef" });
    const neighbours = sh("ip", "neigh", "show", "dev", "va");
    const listedRoute = listRoutes().find((route) => route.destination === "169.254.100.100/32");
    const listedNeighbour = listNeighbours(a.index).get("169.254.100.100") ?? null;
    const known = [...routedGuests(a.index)];
    replaceFdbEntry({ port: b.index, mac: "02:aa:bb:cc:dd:ee" });
    const fdbPort = fdbPortOf(bridge.index, "02:aa:bb:cc:dd:ee");
    const fdb = listFdb(bridge.index).filter((entry) => entry.mac === "02:aa:bb:cc:dd:ee");
    const fdbDeleted = deleteFdbEntry({ port: b.index, mac: "02:aa:bb:cc:dd:ee" });
    const fdbPortAfter = fdbPortOf(bridge.index, "02:aa:bb:cc:dd:ee") ?? null;
    let duplicate = "";
    try {
      createVethPair("va", "vc");
    } catch (error) {
      duplicate = `${isSyscallError(error, 17)} ${(error as Error).message}`;
    }
    const vbMaster = link("vb").master;
    const addressListed = listIpv4Addresses().some((x) =>
      x.index === a.index && x.address === "169.254.169.254" && x.prefix === 32
    );
    const sysctlArpIgnore = sh("cat", "/proc/sys/net/ipv4/conf/va/arp_ignore").trim();
    deleteLink(a.index, "va");
    return {
      bridgeIndex: bridge.index,
      vbIndex: b.index,
      a: { mac: a2.mac, mtu: a2.mtu, up: a2.up, kind: a2.kind },
      vbMaster,
      conf: {
        arp_ignore: a2.ipv4Conf[IPV4_DEVCONF.arp_ignore],
        arp_announce: a2.ipv4Conf[IPV4_DEVCONF.arp_announce],
        rp_filter: a2.ipv4Conf[IPV4_DEVCONF.rp_filter],
        accept_local: a2.ipv4Conf[IPV4_DEVCONF.accept_local],
      },
      sysctlArpIgnore,
      added,
      addressListed,
      routes,
      routeDeleted,
      ruleAdded,
      rule: rules.find((rule) => rule.table === 169254) ?? null,
      ipRules,
      ruleDeleted,
      neighbours,
      listedRoute,
      listedNeighbour,
      known,
      vaIndex: a.index,
      fdbPort,
      fdb,
      fdbDeleted,
      fdbPortAfter,
      duplicate,
      vaGone: findLink("va") === undefined && findLink("vb") === undefined,
    };
  },

  /**
   * A Multus-like bridge with the VM behind tap1 and another host behind the uplink: only the
   * VM's who-has for 169.254.169.254 is answered, once, by the sidecar; it gets a route back.
   */
  async arp() {
    const { vm, far, responder, target, attachment } = multusLikeBridge();
    responder.update([target]);
    const announcedToVm = await exchange(vm, null, 1500, "announcements");
    const announcedToFar = await exchange(far, null, 0, "announcements");
    const vmMac = "62:27:19:f3:0a:ef";
    const forUs = await exchange(
      vm,
      buildArpRequest(vmMac, "169.254.100.100", "169.254.169.254"),
      1000,
    );
    const forOther = await exchange(
      vm,
      buildArpRequest(vmMac, "169.254.100.100", "169.254.169.253"),
      300,
    );
    const gratuitous = await exchange(
      vm,
      buildArpRequest(vmMac, "169.254.169.254", "169.254.169.254"),
      300,
    );
    const fromFar = await exchange(
      far,
      buildArpRequest("62:27:19:f3:0a:f0", "169.254.7.7", "169.254.169.254"),
      300,
    );
    const routes = sh("ip", "-4", "route", "show", "169.254.100.100");
    const neighbours = sh("ip", "neigh", "show", "169.254.100.100");
    const farRoute = sh("ip", "-4", "route", "show", "169.254.7.7");
    await responder.stop();
    const afterStop = await exchange(
      vm,
      buildArpRequest(vmMac, "169.254.100.100", "169.254.169.254"),
      300,
    );
    libc().close(vm);
    libc().close(far);
    return {
      sidecarMac: attachment.sidecar.mac,
      sidecarName: attachment.sidecar.name,
      announcedToVm,
      announcedToFar: announcedToFar.length,
      forUs,
      forOther: forOther.length,
      gratuitous: gratuitous.length,
      fromFar: fromFar.length,
      afterStop: afterStop.length,
      routes,
      neighbours,
      farRoute,
    };
  },

  /** A KubeVirt-like bridge: attach, reuse on a second run, repair with the same MAC. */
  /**
   * Who-has sent while the responder does not know the bridge yet (the VM's port was plugged
   * in a moment before the main thread told the responder): answered once it does, but only
   * for the VM's port, never for the host behind the uplink.
   */
  async arpBeforeThePortIsKnown() {
    const { vm, far, responder, target } = multusLikeBridge();
    responder.update([]);
    const vmRequest = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.254");
    const farRequest = buildArpRequest("62:27:19:f3:0a:f0", "169.254.7.7", "169.254.169.254");
    const beforeVm = await exchange(vm, vmRequest, 200);
    const beforeFar = await exchange(far, farRequest, 200);
    responder.update([target]);
    const afterVm = await exchange(vm, null, 500);
    const afterFar = await exchange(far, null, 300);
    const routes = sh("ip", "-4", "route", "show", "169.254.100.100");
    const farRoute = sh("ip", "-4", "route", "show", "169.254.7.7");
    await responder.stop();
    libc().close(vm);
    libc().close(far);
    return {
      beforeVm: beforeVm.length,
      beforeFar: beforeFar.length,
      afterVm: afterVm.map((reply) => `${reply.targetIp} ${reply.senderIp} ${reply.op}`),
      afterFar: afterFar.length,
      routes,
      farRoute,
    };
  },

  /**
   * A pod whose own network uses link-local addresses (Calico: `169.254.1.1 dev eth0`, default
   * via it): a VM on k6t-net1 claiming 169.254.1.1 (by ARP, then by a SYN) gets no route and
   * no reply, and the pod's route stays; guests with unused addresses get theirs, from an ARP
   * request or a SYN, and a guest moving to a second bridge takes its route along.
   */
  async claimedAddresses() {
    const { vm, far, responder, target, attachment } = multusLikeBridge();
    // The pod's eth0 (a veth: this kernel has no dummy interfaces) and its Calico-style routes.
    sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "node0");
    sh("ip", "addr", "add", "10.244.0.7/32", "dev", "eth0");
    sh("ip", "link", "set", "node0", "up");
    sh("ip", "link", "set", "eth0", "up");
    sh("ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link");
    sh("ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0");
    const podRoutesBefore = sh("ip", "-4", "route", "show", "table", "main");
    // A second link-local network, for the guest that moves.
    sh("ip", "link", "add", "k6t-net2", "type", "bridge");
    sh("ip", "link", "add", "tap2", "type", "veth", "peer", "name", "vm2");
    sh("ip", "link", "set", "vm2", "address", "62:27:19:f3:0a:f1", "up");
    setIpv4Conf(link("vm2").index, { arp_ignore: 8 });
    sh("ip", "link", "set", "tap2", "master", "k6t-net2", "up");
    sh("ip", "link", "set", "k6t-net2", "up");
    // KubeVirt's DHCP server address on a bridge-binding bridge: local in the pod.
    sh("ip", "addr", "add", "169.254.75.10/32", "dev", "k6t-net2");
    const { log } = capturingLogger();
    const second = attachToBridge(link("k6t-net2"), log);
    const vm2 = arpSocket("vm2");
    responder.update([target, {
      ...target,
      bridge: "k6t-net2",
      sidecarIndex: second.sidecar.index,
      sidecarName: second.sidecar.name,
      bridgeSideIndex: second.bridgeSide.index,
      mac: second.sidecar.mac,
      vmPorts: [link("tap2").index],
      otherPorts: [],
    }]);
    const vmMac = "62:27:19:f3:0a:ef";
    const ask = (fd: number, mac: string, ip: string) =>
      exchange(fd, buildArpRequest(mac, ip, "169.254.169.254"), 400);
    const syn = (ip: string) =>
      buildTcpSyn({
        sourceMac: vmMac,
        destinationMac: attachment.sidecar.mac,
        sourceIp: ip,
        destinationIp: "169.254.169.254",
        destinationPort: 80,
      });
    const claimed = [
      await ask(vm, vmMac, "169.254.1.1"),
      await exchange(vm, syn("169.254.1.1"), 300),
      await ask(vm, vmMac, "169.254.1.1"),
      await ask(vm, vmMac, "169.254.75.10"),
    ].map((replies) => replies.length);
    const podRoutesAfter = sh("ip", "-4", "route", "show", "table", "main");
    const claimedRoute = sh("ip", "-4", "route", "show", "169.254.1.1");
    // The kernel may have noted the guest on its bridge before the sidecar served it.
    sh("ip", "neigh", "replace", "169.254.100.100", "lladdr", vmMac, "dev", "k6t-net1");
    const fresh = (await ask(vm, vmMac, "169.254.100.100")).length;
    const freshRoute = sh("ip", "-4", "route", "show", "169.254.100.100");
    await exchange(vm, syn("169.254.100.101"), 300);
    const fromSynRoute = sh("ip", "-4", "route", "show", "169.254.100.101");
    const moved = (await ask(vm2, "62:27:19:f3:0a:f1", "169.254.100.100")).length;
    const movedRoute = sh("ip", "-4", "route", "show", "169.254.100.100");
    await responder.stop();
    for (const fd of [vm, vm2, far]) libc().close(fd);
    return {
      sidecarNames: [attachment.sidecar.name, second.sidecar.name],
      podRoutesBefore,
      podRoutesAfter,
      claimed,
      claimedRoute,
      fresh,
      freshRoute,
      fromSynRoute,
      moved,
      movedRoute,
    };
  },

  attach() {
    sh("ip", "link", "add", "k6t-net1", "type", "bridge");
    sh("ip", "link", "add", "tap1", "type", "veth", "peer", "name", "vm1");
    sh("ip", "link", "set", "tap1", "address", "0a:00:00:00:00:01");
    sh("ip", "link", "set", "tap1", "master", "k6t-net1", "up");
    sh("ip", "link", "set", "vm1", "up");
    sh("ip", "link", "set", "k6t-net1", "mtu", "1400", "up");
    const { log, messages } = capturingLogger();
    ensureLoopbackAddress(log);
    ensureLoopbackAddress(log);
    const bridgeBefore = link("k6t-net1");
    const first = attachToBridge(bridgeBefore, log);
    const bridgeAfter = link("k6t-net1");
    const second = attachToBridge(bridgeAfter, log);
    deleteLink(first.sidecar.index, first.sidecar.name);
    const repaired = attachToBridge(link("k6t-net1"), log, { previousMac: first.sidecar.mac });
    const sidecar = link(repaired.sidecar.name);
    const bridgeSide = link(repaired.bridgeSide.name);
    return {
      bridgeMacBefore: bridgeBefore.mac,
      bridgeMacAfter: link("k6t-net1").mac,
      bridgeArpIgnore: link("k6t-net1").ipv4Conf[IPV4_DEVCONF.arp_ignore],
      first: { ...first, sidecarName: first.sidecar.name, bridgeSideName: first.bridgeSide.name },
      second: { reused: second.reused, mac: second.sidecar.mac },
      repaired: { reused: repaired.reused, mac: repaired.sidecar.mac },
      sidecar: {
        up: sidecar.up,
        mtu: sidecar.mtu,
        arpIgnore: sidecar.ipv4Conf[IPV4_DEVCONF.arp_ignore],
        arpAnnounce: sidecar.ipv4Conf[IPV4_DEVCONF.arp_announce],
        rpFilter: sidecar.ipv4Conf[IPV4_DEVCONF.rp_filter],
      },
      bridgeSide: {
        up: bridgeSide.up,
        mtu: bridgeSide.mtu,
        masterIsBridge: bridgeSide.master === link("k6t-net1").index,
        mac: bridgeSide.mac,
      },
      addresses: listIpv4Addresses()
        .filter((address) => address.address === "169.254.169.254")
        .map((address) =>
          address.index === sidecar.index ? "sidecar" : address.index === 1 ? "lo" : "other"
        ),
      bridgeSideAddresses: sh("ip", "-4", "addr", "show", "dev", bridgeSide.name).trim(),
      messages,
    };
  },
};

const name = Deno.args[0];
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario "${name}"; known: ${Object.keys(scenarios).join(", ")}`);
  Deno.exit(2);
}
console.log(JSON.stringify(await scenario()));
