import { assertEquals } from "../../../testing/assert.ts";
import { describeRule, newRule } from "../kernel/nftables.ts";
import {
  GUARD_BRIDGE_TABLE,
  GUARD_IP6_TABLE,
  GUARD_IP_TABLE,
  guardBatch,
  guardBridgeRules,
  guardIp6Rules,
  guardIpRules,
} from "./ingress_guard.ts";

// `nft --debug=netlink -f` output for the text `nft list ruleset` printed after guardBatch()
// was committed in an empty namespace: what nft itself sends for the rules the kernel holds.
const NFT_DEBUG_NETLINK = [
  "ip kubevirt-imds-guard input",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x00006f6c 0x00000000 0x00000000 0x00000000 ]",
  "  [ immediate reg 0 accept ]",
  "ip kubevirt-imds-guard input",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x73646d69 0x0000002d ]",
  "  [ immediate reg 0 accept ]",
  "ip kubevirt-imds-guard input",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x2d74366b ]",
  "  [ immediate reg 0 accept ]",
  "ip kubevirt-imds-guard input",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ immediate reg 0 drop ]",
  "ip6 kubevirt-imds-guard input",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x00006f6c 0x00000000 0x00000000 0x00000000 ]",
  "  [ immediate reg 0 accept ]",
  "ip6 kubevirt-imds-guard input",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x73646d69 0x0000002d ]",
  "  [ immediate reg 0 accept ]",
  "ip6 kubevirt-imds-guard input",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x2d74366b ]",
  "  [ immediate reg 0 accept ]",
  "ip6 kubevirt-imds-guard input",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds-guard prerouting",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp neq reg 1 0x00706174 ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x00000008 ]",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds-guard prerouting",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp neq reg 1 0x00706174 ]",
  "  [ payload load 2b @ link header + 12 => reg 1 ]",
  "  [ cmp eq reg 1 0x00000608 ]",
  "  [ payload load 4b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds-guard prerouting",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp neq reg 1 0x00706174 ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x0000dd86 ]",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ immediate reg 0 drop ]",
].join("\n");

Deno.test("the guard rules are the ones nft compiles from the installed tables", () => {
  const describe = (family: string, table: string, rules: ReturnType<typeof guardIpRules>) =>
    rules.flatMap((rule) => [
      `${family} ${table} ${rule.chain}`,
      ...describeRule(newRule(GUARD_IP_TABLE, rule)).map((line) => `  ${line}`),
    ]);
  assertEquals(
    [
      ...describe("ip", GUARD_IP_TABLE.table, guardIpRules()),
      ...describe("ip6", GUARD_IP6_TABLE.table, guardIp6Rules()),
      ...describe("bridge", GUARD_BRIDGE_TABLE.table, guardBridgeRules()),
    ].join("\n"),
    NFT_DEBUG_NETLINK,
  );
});

Deno.test("the guard batch replaces both tables before filling them", () => {
  const messages = guardBatch();
  const summary = messages.map((m) => `${m.payload[0]}:${m.type & 0xff}`);
  // family 2 = ip, 10 = ip6, 7 = bridge; 0 NEWTABLE, 2 DELTABLE, 3 NEWCHAIN, 6 NEWRULE
  assertEquals(summary.slice(0, 9), [
    "2:0",
    "2:2",
    "2:0",
    "10:0",
    "10:2",
    "10:0",
    "7:0",
    "7:2",
    "7:0",
  ]);
  assertEquals(summary.slice(9), [
    "2:3",
    "2:6",
    "2:6",
    "2:6",
    "2:6",
    "10:3",
    "10:6",
    "10:6",
    "10:6",
    "10:6",
    "7:3",
    "7:6",
    "7:6",
    "7:6",
  ]);
});
