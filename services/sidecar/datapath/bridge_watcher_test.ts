import { assertEquals } from "../../../testing/assert.ts";
import { selectBridges } from "./bridge_watcher.ts";
import type { Link } from "../kernel/rtnetlink.ts";

const link = (name: string, kind: string): Link => ({
  index: 1,
  name,
  kind,
  master: 0,
  mac: "02:00:00:00:00:00",
  flags: 0,
  up: true,
  operstate: "up",
  mtu: 1500,
  ipv4Conf: [],
});

const LINKS = [
  link("lo", ""),
  link("eth0", "veth"),
  link("k6t-eth0", "bridge"),
  link("k6t-1a2b3c4d5e6", "bridge"),
  link("k6t-net1", "bridge"),
  link("k6t-fake", "veth"),
  link("br0", "bridge"),
];

Deno.test("every k6t-* bridge is served when no names are given", () => {
  assertEquals(selectBridges(LINKS, []).map((l) => l.name), [
    "k6t-eth0",
    "k6t-1a2b3c4d5e6",
    "k6t-net1",
  ]);
});

Deno.test("named bridges restrict the choice, and only bridges count", () => {
  assertEquals(selectBridges(LINKS, ["k6t-net1", "br0", "k6t-fake"]).map((l) => l.name), [
    "k6t-net1",
    "br0",
  ]);
});
