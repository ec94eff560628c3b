import { assert, assertEquals, assertMatch } from "../../../testing/assert.ts";
import { bridgePortMac, isLinkLocal } from "./attach.ts";
import { netnsTest, runScenario } from "../../../testing/netns/harness.ts";

Deno.test("bridge-side MACs start with fe (never a bridge's lowest port MAC) and are unicast", () => {
  assertEquals(bridgePortMac((bytes) => bytes.fill(0x01)), "fe:01:01:01:01:01");
  assertMatch(bridgePortMac(), /^fe(:[0-9a-f]{2}){5}$/);
});

Deno.test("only link-local clients other than the metadata address get a learned route", () => {
  assert(isLinkLocal("169.254.100.100"));
  assert(!isLinkLocal("169.254.169.254"));
  assert(!isLinkLocal("10.0.2.2"));
  assert(!isLinkLocal("169.254.0.7"), "RFC 3927 reserves 169.254.0.0/24 and 169.254.255.0/24");
});

interface AttachResult {
  bridgeMacBefore: string;
  bridgeMacAfter: string;
  bridgeArpIgnore: number;
  first: { reused: boolean; sidecarName: string; bridgeSideName: string; sidecar: { mac: string } };
  second: { reused: boolean; mac: string };
  repaired: { reused: boolean; mac: string };
  sidecar: { up: boolean; mtu: number; arpIgnore: number; arpAnnounce: number; rpFilter: number };
  bridgeSide: { up: boolean; mtu: number; masterIsBridge: boolean; mac: string };
  addresses: string[];
  bridgeSideAddresses: string;
  messages: string[];
}

netnsTest(
  "attaching to a bridge: veth pair, settings, reuse and repair with the same MAC",
  async () => {
    const { result: r } = await runScenario<AttachResult>("attach");
    assertEquals([r.first.sidecarName, r.first.bridgeSideName], ["imds-net1", "imdb-net1"]);
    assertEquals(r.first.reused, false);
    assertEquals(r.bridgeMacAfter, r.bridgeMacBefore, "the bridge keeps its MAC");
    assertEquals(r.bridgeArpIgnore, 1, "the bridge no longer announces every pod address");
    assertEquals(r.second, { reused: true, mac: r.first.sidecar.mac });
    assertEquals(r.repaired, { reused: false, mac: r.first.sidecar.mac });
    assertEquals(r.sidecar, { up: true, mtu: 1400, arpIgnore: 8, arpAnnounce: 2, rpFilter: 0 });
    assertEquals(r.bridgeSide.masterIsBridge, true);
    assertEquals([r.bridgeSide.up, r.bridgeSide.mtu], [true, 1400]);
    assertMatch(r.bridgeSide.mac, /^fe:/);
    assertEquals(r.addresses, ["lo", "sidecar"]);
    assertEquals(r.bridgeSideAddresses, "", "no address on the bridge port");
    assertEquals(r.messages.slice(0, 2), [
      "added 169.254.169.254/32 to loopback",
      "169.254.169.254/32 is already on loopback",
    ]);
  },
);
