import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../../testing/assert.ts";
import {
  type ClientVerdict,
  createRefusals,
  judgeClient,
  type PodRouting,
  policyFor,
} from "./guest_route_policy.ts";
import { netnsTest, runScenario } from "../../../testing/netns/harness.ts";
import { isLinkLocalUnicast } from "../kernel/ipv4.ts";

/**
 * A Calico pod with a bridge-binding NIC and a Multus link-local NIC, as the kernel lists it:
 * 1 lo, 2 eth0 (Calico: 10.244.0.7, default via 169.254.1.1), 3 k6t-eth0 (KubeVirt's DHCP
 * server address 169.254.75.10/32), 4 k6t-net1 (link-local network, no address), 5 imds-eth0,
 * 6 imds-net1 (already routing 169.254.100.100 back), 7 imds-old (a veth of a bridge that is
 * gone, still routing 169.254.200.1).
 */
function calicoPod(): PodRouting {
  return {
    addresses: [
      { index: 1, address: "127.0.0.1" },
      { index: 1, address: "169.254.169.254" },
      { index: 2, address: "10.244.0.7" },
      { index: 3, address: "169.254.75.10" },
      { index: 5, address: "169.254.169.254" },
      { index: 6, address: "169.254.169.254" },
    ],
    routes: [
      { destination: "0.0.0.0/0", gateway: "169.254.1.1", device: 2, table: 254 },
      { destination: "169.254.1.1/32", device: 2, table: 254, scope: 253 },
      { destination: "169.254.100.100/32", device: 6, table: 254, scope: 253 },
      { destination: "169.254.200.1/32", device: 7, table: 254, scope: 253 },
      { destination: "10.244.0.7/32", device: 2, table: 255, type: 2 },
      { destination: "169.254.75.10/32", device: 3, table: 255, type: 2 },
      { destination: "169.254.169.254/32", device: 1, table: 255, type: 2 },
    ],
    neighbours: [
      { index: 2, address: "169.254.1.1" },
      { index: 4, address: "169.254.33.33" },
      { index: 6, address: "169.254.100.100" },
    ],
    interfaces: new Map([
      [1, "lo"],
      [2, "eth0"],
      [3, "k6t-eth0"],
      [4, "k6t-net1"],
      [5, "imds-eth0"],
      [6, "imds-net1"],
      [7, "imds-old"],
    ]),
  };
}

function judge(ip: string, routing = calicoPod()): ClientVerdict {
  const policy = policyFor(routing, {
    sidecarIndexes: [5, 6],
    bridges: ["k6t-eth0", "k6t-net1"],
  }, "imds-");
  return judgeClient(ip, routing, policy);
}

function refusedBecause(ip: string, pattern: RegExp, routing = calicoPod()): void {
  const verdict = judge(ip, routing);
  assert(!verdict.accept, `${ip} should be refused`);
  assertMatch(verdict.reason, pattern);
}

Deno.test("a guest with a fresh link-local address gets its route back", () => {
  assertEquals(judge("169.254.50.60"), { accept: true });
});

Deno.test("only RFC 3927 link-local unicast addresses are learned", () => {
  assert(isLinkLocalUnicast("169.254.1.0"));
  assert(isLinkLocalUnicast("169.254.254.255"));
  for (const ip of ["169.254.0.7", "169.254.255.1", "169.254.255.255", "10.0.2.2", "169.254.1"]) {
    assert(!isLinkLocalUnicast(ip), ip);
    refusedBecause(ip, /not a link-local unicast address/);
  }
  refusedBecause("169.254.169.254", /is the metadata address itself/);
});

Deno.test("Calico's gateway 169.254.1.1 is refused, naming the pod's route", () => {
  refusedBecause("169.254.1.1", /169\.254\.1\.1 .*dev eth0/);
  // Its /32 route alone is enough…
  const viaRoute = calicoPod();
  viaRoute.routes = viaRoute.routes.filter((route) => route.gateway === undefined);
  viaRoute.neighbours = [];
  refusedBecause(
    "169.254.1.1",
    /already routes 169\.254\.1\.1 elsewhere \(route 169\.254\.1\.1\/32 dev eth0\)/,
    viaRoute,
  );
  // …and so is being the default route's gateway.
  const asGateway = calicoPod();
  asGateway.routes = asGateway.routes.filter((route) => route.destination !== "169.254.1.1/32");
  asGateway.neighbours = [];
  refusedBecause(
    "169.254.1.1",
    /uses 169\.254\.1\.1 as a gateway \(route 0\.0\.0\.0\/0 via 169\.254\.1\.1 dev eth0\)/,
    asGateway,
  );
});

Deno.test("addresses of the pod itself are refused, KubeVirt's DHCP address included", () => {
  refusedBecause("169.254.75.10", /169\.254\.75\.10 is an address of this pod \(on k6t-eth0\)/);
  const routing = calicoPod();
  routing.addresses.push({ index: 2, address: "169.254.9.9" });
  refusedBecause("169.254.9.9", /an address of this pod \(on eth0\)/, routing);
});

Deno.test("a more specific route through another device refuses every address it covers", () => {
  const routing = calicoPod();
  routing.routes.push({ destination: "169.254.75.0/24", device: 3, table: 254 });
  refusedBecause(
    "169.254.75.11",
    /routes 169\.254\.75\.11 elsewhere \(route 169\.254\.75\.0\/24 dev k6t-eth0\)/,
    routing,
  );
  routing.routes.push({ destination: "169.254.44.0/24", device: 2, table: 100 });
  refusedBecause("169.254.44.4", /\(route 169\.254\.44\.0\/24 dev eth0 \(table 100\)\)/, routing);
  // 169.254.0.0/16 (or the default route) does not single out any guest.
  routing.routes.push({ destination: "169.254.0.0/16", device: 2, table: 254 });
  assertEquals(judge("169.254.45.4", routing), { accept: true });
});

Deno.test("a neighbour entry on another device refuses; one on a served VM bridge does not", () => {
  const routing = calicoPod();
  routing.neighbours.push({ index: 2, address: "169.254.8.8" });
  refusedBecause("169.254.8.8", /has 169\.254\.8\.8 as a neighbour on eth0/, routing);
  // The kernel noted a guest on k6t-net1 before the sidecar attached: still that guest's.
  assertEquals(judge("169.254.33.33"), { accept: true });
});

Deno.test("a guest moving between the sidecar's own veths keeps working", () => {
  // Routed (with a neighbour) through imds-net1 today, now asking on another bridge.
  assertEquals(judge("169.254.100.100"), { accept: true });
  // Routed through the veth of a bridge that is gone (found by its name).
  assertEquals(judge("169.254.200.1"), { accept: true });
  // The same route through a device that is not one of ours refuses it.
  const routing = calicoPod();
  routing.interfaces.set(7, "net7");
  refusedBecause(
    "169.254.200.1",
    /routes 169\.254\.200\.1 elsewhere \(route 169\.254\.200\.1\/32 dev net7\)/,
    routing,
  );
});

Deno.test("refusals are remembered for a while, logged once per reason, and bounded", () => {
  const refusals = createRefusals(3, 1000);
  assertEquals(refusals.recent("169.254.1.1", 0), undefined);
  assert(refusals.remember("169.254.1.1", "gateway", 0), "first refusal is logged");
  assertEquals(refusals.recent("169.254.1.1", 999), "gateway");
  assertEquals(refusals.recent("169.254.1.1", 1000), undefined, "judged again after a while");
  assert(!refusals.remember("169.254.1.1", "gateway", 1000), "same reason: not logged again");
  assert(refusals.remember("169.254.1.1", "local address", 1001), "new reason: logged");
  for (const ip of ["169.254.2.2", "169.254.3.3", "169.254.4.4"]) {
    refusals.remember(ip, "gateway", 1002);
  }
  assertEquals(refusals.size, 3);
  assertEquals(refusals.recent("169.254.1.1", 1002), undefined, "the oldest was dropped");
  assertEquals(refusals.recent("169.254.4.4", 1002), "gateway");
  refusals.forget("169.254.4.4");
  assertEquals(refusals.recent("169.254.4.4", 1002), undefined);
});

interface ClaimedResult {
  sidecarNames: string[];
  podRoutesBefore: string;
  podRoutesAfter: string;
  claimed: number[];
  claimedRoute: string;
  fresh: number;
  freshRoute: string;
  fromSynRoute: string;
  moved: number;
  movedRoute: string;
}

netnsTest(
  "a guest claiming the pod's gateway 169.254.1.1 gets no route; other link-local guests do",
  async () => {
    const { result: r, logs } = await runScenario<ClaimedResult>("claimedAddresses");
    const [net1, net2] = r.sidecarNames;
    assertMatch(r.podRoutesBefore, /^169\.254\.1\.1 dev eth0 scope link/m);
    assertEquals(r.podRoutesAfter, r.podRoutesBefore, "the pod's routes are untouched");
    assertEquals(r.claimedRoute.trim(), "169.254.1.1 dev eth0 scope link");
    assertEquals(r.claimed, [0, 0, 0, 0], "no ARP reply to a guest claiming a pod address");
    const refusals = logs.filter((line) =>
      line.includes("is not served (no ARP reply, no route back through")
    );
    assertEquals(refusals.length, 2, `one warning per claimed address: ${refusals.join("\n")}`);
    assertStringIncludes(refusals[0], "guest 169.254.1.1 (62:27:19:f3:0a:ef) on k6t-net1");
    assertMatch(refusals[0], /: the pod (uses|already routes) 169\.254\.1\.1 .*dev eth0/);
    assertStringIncludes(refusals[1], "169.254.75.10 is an address of this pod (on k6t-net2)");
    assertEquals(r.fresh, 1, "a guest with an unused address is answered");
    assertEquals(
      r.freshRoute.trim(),
      `169.254.100.100 dev ${net1} proto static scope link src 169.254.169.254`,
    );
    assertEquals(
      r.fromSynRoute.trim(),
      `169.254.100.101 dev ${net1} proto static scope link src 169.254.169.254`,
      "learned from a SYN too",
    );
    assertEquals(r.moved, 1);
    assertEquals(
      r.movedRoute.trim(),
      `169.254.100.100 dev ${net2} proto static scope link src 169.254.169.254`,
      "a guest moving to another link-local network takes its route along",
    );
  },
);
