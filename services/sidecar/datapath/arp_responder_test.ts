import { assertEquals, assertMatch } from "../../../testing/assert.ts";
import { buildArpReply, buildArpRequest, parseArpFrame } from "../kernel/arp_packet.ts";
import { netnsTest, runScenario } from "../../../testing/netns/harness.ts";
import type { ArpPacket } from "../kernel/arp_packet.ts";

Deno.test("a reply built for a parsed request parses back as the answer to it", () => {
  const request = parseArpFrame(
    buildArpRequest("62:27:19:f3:0a:ef", "169.254.1.2", "169.254.169.254"),
  )!;
  const reply = parseArpFrame(buildArpReply(request, "169.254.169.254", "c2:cd:45:cb:7a:6e"))!;
  assertEquals(reply.targetIp, "169.254.1.2");
  assertEquals(reply.targetMac, "62:27:19:f3:0a:ef");
  assertEquals(reply.ethernetSource, "c2:cd:45:cb:7a:6e");
});

interface ArpResult {
  sidecarMac: string;
  sidecarName: string;
  announcedToVm: ArpPacket[];
  announcedToFar: number;
  forUs: ArpPacket[];
  forOther: number;
  gratuitous: number;
  fromFar: number;
  afterStop: number;
  routes: string;
  neighbours: string;
  farRoute: string;
}

netnsTest(
  "the ARP responder answers the VM's who-has 169.254.169.254 only, then stops",
  async () => {
    const { result: r, logs } = await runScenario<ArpResult>("arp");
    const announcement = {
      op: 1,
      ethernetSource: r.sidecarMac,
      senderMac: r.sidecarMac,
      senderIp: "169.254.169.254",
      targetMac: "00:00:00:00:00:00",
      targetIp: "169.254.169.254",
    };
    assertEquals(r.announcedToVm, [announcement, announcement], "announced at once and after 1 s");
    assertEquals(r.announcedToFar, 0, "announcements go to the VM's port only");
    assertEquals(r.forUs, [{
      op: 2,
      ethernetSource: r.sidecarMac,
      senderMac: r.sidecarMac,
      senderIp: "169.254.169.254",
      targetMac: "62:27:19:f3:0a:ef",
      targetIp: "169.254.100.100",
    }], "exactly one answer, from the sidecar (the bridge's kernel stays quiet)");
    assertEquals(r.forOther, 0, "a who-has for another address gets no answer");
    assertEquals(r.gratuitous, 0, "a gratuitous ARP for the address is not answered");
    assertEquals(r.fromFar, 0, "a host behind the pod's uplink gets no answer");
    assertEquals(r.afterStop, 0, "a stopped responder answers nothing");
    assertMatch(r.routes, new RegExp(`dev ${r.sidecarName} .*src 169\\.254\\.169\\.254`));
    assertMatch(r.neighbours, new RegExp(`dev ${r.sidecarName} lladdr 62:27:19:f3:0a:ef`));
    assertEquals(r.farRoute, "", "no route back is learned for an ignored asker");
    assertEquals(logs, [
      `announced 169.254.169.254 is at ${r.sidecarMac} to the VM`,
      "ARP request for 169.254.169.254 from 169.254.100.100 (62:27:19:f3:0a:ef)",
      `ARP reply sent: 169.254.169.254 is at ${r.sidecarMac}`,
      `route back to 169.254.100.100 through ${r.sidecarName}`,
      "ARP request for 169.254.169.254 from 169.254.7.7 (62:27:19:f3:0a:f0) ignored: it came in through net1-nic, not from this VM",
    ]);
  },
);

netnsTest(
  "a who-has that came in before the responder knew the VM's port is answered once it does",
  async () => {
    const { result: r } = await runScenario<{
      beforeVm: number;
      beforeFar: number;
      afterVm: string[];
      afterFar: number;
      routes: string;
      farRoute: string;
    }>("arpBeforeThePortIsKnown");
    assertEquals([r.beforeVm, r.beforeFar], [0, 0], "nothing is answered for an unknown port");
    assertEquals(r.afterVm, ["169.254.100.100 169.254.169.254 2"], "one reply, to the VM");
    assertEquals(r.afterFar, 0, "the host behind the uplink still gets nothing");
    assertMatch(r.routes, /src 169\.254\.169\.254/);
    assertEquals(r.farRoute, "");
  },
);
