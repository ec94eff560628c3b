import { assert, assertEquals, assertMatch } from "../../../testing/assert.ts";
import { netnsTest, runScenario } from "../../../testing/netns/harness.ts";
import { ifinfomsg, ipv4ConfAttr, ndmsg, parseIpv4Conf, rtmsg } from "./rtnetlink.ts";
import { attrTable, parseAttrs, u32 } from "./netlink.ts";

Deno.test("ifinfomsg packs family, index, flags and change mask", () => {
  assertEquals(
    [...ifinfomsg({ index: 7, flags: 1, change: 1 })],
    [0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0],
  );
});

Deno.test("rtmsg carries tables above 255 only as an attribute (header says unspec)", () => {
  assertEquals([...rtmsg({ family: 2, dstLen: 32, table: 254, scope: 253, type: 1 })], [
    2,
    32,
    0,
    0,
    254,
    0,
    253,
    1,
    0,
    0,
    0,
    0,
  ]);
  assertEquals(rtmsg({ family: 2, table: 169254 })[4], 0);
});

Deno.test("ndmsg packs ifindex, NUD state and flags", () => {
  assertEquals([...ndmsg({ family: 7, index: 3, state: 0x40, flags: 0x04 })], [
    7,
    0,
    0,
    0,
    3,
    0,
    0,
    0,
    0x40,
    0,
    0x04,
    0,
  ]);
});

Deno.test("IPv4 device settings nest as IFLA_AF_SPEC → AF_INET → IFLA_INET_CONF → setting", () => {
  const [afSpec] = parseAttrs(ipv4ConfAttr({ arp_ignore: 8, rp_filter: 0 }));
  assertEquals(afSpec.type, 26);
  const inet = attrTable(afSpec.value).get(2)!;
  const conf = parseAttrs(attrTable(inet).get(1)!);
  assertEquals(conf.map((setting) => [setting.type, u32(setting.value)]), [[19, 8], [8, 0]]);
});

Deno.test("parseIpv4Conf reads the kernel's settings array (setting N at offset 4*(N-1))", () => {
  const values = new Uint8Array(4 * 26);
  const view = new DataView(values.buffer);
  view.setUint32(4 * (19 - 1), 8, true); // arp_ignore
  view.setUint32(4 * (8 - 1), 2, true); // rp_filter
  const inetConf = new Uint8Array([...[4 + values.length, 0, 1, 0], ...values]);
  const inet = new Uint8Array([...[4 + inetConf.length, 0, 2, 0], ...inetConf]);
  const conf = parseIpv4Conf(inet);
  assertEquals(conf[19], 8);
  assertEquals(conf[8], 2);
  assertEquals(parseIpv4Conf(undefined), []);
});

interface RtnetlinkResult {
  bridgeIndex: number;
  vbIndex: number;
  a: { mac: string; mtu: number; up: boolean; kind: string };
  vbMaster: number;
  conf: Record<string, number>;
  sysctlArpIgnore: string;
  added: boolean[];
  addressListed: boolean;
  routes: string;
  routeDeleted: boolean[];
  ruleAdded: boolean[];
  rule: Record<string, unknown> | null;
  ipRules: string;
  ruleDeleted: boolean[];
  neighbours: string;
  listedRoute: Record<string, unknown>;
  listedNeighbour: string | null;
  known: [string, string][];
  vaIndex: number;
  fdbPort: number;
  fdb: { port: number; mac: string; bridge: number }[];
  fdbDeleted: boolean;
  fdbPortAfter: number | null;
  duplicate: string;
  vaGone: boolean;
}

netnsTest("rtnetlink changes links, addresses, routes, rules, neighbours and FDB", async () => {
  const { result: r } = await runScenario<RtnetlinkResult>("rtnetlink");
  assertEquals(r.a, { mac: "02:11:22:33:44:55", mtu: 1400, up: true, kind: "veth" });
  assertEquals(r.vbMaster, r.bridgeIndex, "the veth end became a port of the bridge");
  assertEquals(r.conf, { arp_ignore: 8, arp_announce: 2, rp_filter: 0, accept_local: 1 });
  assertEquals(r.sysctlArpIgnore, "8", "the kernel's own view agrees");
  assertEquals(r.added, [true, false], "adding an address twice is not an error");
  assert(r.addressListed);
  assertMatch(r.routes, /169\.254\.100\.100 dev va proto static scope link src 169\.254\.169\.254/);
  assertMatch(r.routes, /10\.244\.0\.7 dev va table 169254/);
  assertEquals(r.routeDeleted, [true, false]);
  assertEquals(r.ruleAdded, [true, false]);
  assertEquals(r.rule, {
    priority: 100,
    table: 169254,
    action: 1,
    from: "169.254.169.254/32",
    protocol: 4,
  });
  assertMatch(r.ipRules, /100:\s+from 169\.254\.169\.254 lookup 169254/);
  assertEquals(r.ruleDeleted, [true, false]);
  assertMatch(r.neighbours, /169\.254\.100\.100 lladdr 62:27:19:f3:0a:ef/);
  assertEquals(r.listedRoute, {
    destination: "169.254.100.100/32",
    table: 254,
    scope: 253,
    type: 1,
    device: r.vaIndex,
    source: "169.254.169.254",
  });
  assertEquals(r.listedNeighbour, "62:27:19:f3:0a:ef");
  assertEquals(r.known, [["169.254.100.100", "62:27:19:f3:0a:ef"]], "a restart finds its guests");
  assertEquals(r.fdbPort, r.vbIndex);
  assertEquals(r.fdb.map((entry) => entry.port), [r.vbIndex]);
  assert(r.fdbDeleted);
  assertEquals(r.fdbPortAfter, null);
  assertEquals(r.duplicate, "true create veth pair va/vc failed: File exists (errno 17)");
  assert(r.vaGone, "deleting one veth end removes the pair");
});
