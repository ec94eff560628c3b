import { assert, assertEquals } from "../../../testing/assert.ts";
import { describeRule, newRule } from "../kernel/nftables.ts";
import {
  INTERCEPT_TABLE,
  interceptBatch,
  interceptRules,
  type InterceptTarget,
  removalBatch,
} from "./bridge_intercept_ruleset.ts";

const bridgeBinding: InterceptTarget = {
  bridge: "k6t-eth0",
  bridgeMac: "ce:7d:3a:5f:31:68",
  vmPorts: ["tap0"],
  sidecarPort: "imdb-eth0",
  sidecarMac: "0e:1d:5a:00:00:01",
};

// `nft --debug=netlink -f` output for the text `nft list table bridge kubevirt-imds` printed
// after this module's batch for `bridgeBinding` was installed in a namespace: what nft itself
// would send for the rules the kernel reports back.
const NFT_DEBUG_NETLINK = [
  "bridge kubevirt-imds prerouting",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x30706174 0x00000000 0x00000000 0x00000000 ]",
  "  [ payload load 6b @ link header + 0 => reg 1 ]",
  "  [ cmp neq reg 1 0x5f3a7dce 0x00006831 ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x00000008 ]",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ immediate reg 1 0x005a1d0e 0x00000100 ]",
  "  [ payload write reg 1 => 6b @ link header + 0 csum_type 0 csum_off 0 csum_flags 0x0 ]",
  "bridge kubevirt-imds prerouting",
  "  [ meta load iifname => reg 1 ]",
  "  [ cmp eq reg 1 0x30706174 0x00000000 0x00000000 0x00000000 ]",
  "  [ payload load 6b @ link header + 0 => reg 1 ]",
  "  [ cmp neq reg 1 0x5f3a7dce 0x00006831 ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x0000dd86 ]",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ immediate reg 1 0x005a1d0e 0x00000100 ]",
  "  [ payload write reg 1 => 6b @ link header + 0 csum_type 0 csum_off 0 csum_flags 0x0 ]",
  "bridge kubevirt-imds forward",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set vm_ports ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x00000008 ]",
  "  [ payload load 4b @ network header + 16 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports 0x1 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds forward",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set vm_ports ]",
  "  [ meta load protocol => reg 1 ]",
  "  [ cmp eq reg 1 0x0000dd86 ]",
  "  [ payload load 16b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xc20e00fd 0x00000000 0x00000000 0x54020000 ]",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports 0x1 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds forward",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set vm_ports ]",
  "  [ payload load 2b @ link header + 12 => reg 1 ]",
  "  [ cmp eq reg 1 0x00000608 ]",
  "  [ payload load 4b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports 0x1 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds forward",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports ]",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set vm_ports 0x1 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds forward",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports ]",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set vm_ports 0x1 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds forward",
  "  [ meta load oifname => reg 1 ]",
  "  [ cmp eq reg 1 0x62646d69 0x6874652d 0x00000030 0x00000000 ]",
  "  [ payload load 6b @ link header + 0 => reg 1 ]",
  "  [ cmp eq reg 1 0x005a1d0e 0x00000100 ]",
  "  [ immediate reg 0 accept ]",
  "bridge kubevirt-imds forward",
  "  [ meta load oifname => reg 1 ]",
  "  [ cmp eq reg 1 0x62646d69 0x6874652d 0x00000030 0x00000000 ]",
  "  [ payload load 2b @ link header + 12 => reg 1 ]",
  "  [ cmp eq reg 1 0x00000608 ]",
  "  [ payload load 4b @ network header + 24 => reg 1 ]",
  "  [ cmp eq reg 1 0xfea9fea9 ]",
  "  [ immediate reg 0 accept ]",
  "bridge kubevirt-imds forward",
  "  [ meta load oifname => reg 1 ]",
  "  [ cmp eq reg 1 0x62646d69 0x6874652d 0x00000030 0x00000000 ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds output",
  "  [ meta load oifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports ]",
  "  [ immediate reg 0 drop ]",
  "bridge kubevirt-imds input",
  "  [ meta load iifname => reg 1 ]",
  "  [ lookup reg 1 set sidecar_ports ]",
  "  [ immediate reg 0 drop ]",
].join("\n");

function describeAll(targets: InterceptTarget[]): string {
  return interceptRules(targets).flatMap((rule) => [
    `bridge ${INTERCEPT_TABLE.table} ${rule.chain}`,
    ...describeRule(newRule(INTERCEPT_TABLE, rule)).map((line) => `  ${line}`),
  ]).join("\n");
}

Deno.test("the interception rules are the ones nft compiles from the installed table", () => {
  assertEquals(describeAll([bridgeBinding]), NFT_DEBUG_NETLINK);
});

Deno.test("each VM port of each bridge gets its own redirect to that bridge's sidecar MAC", () => {
  const multus: InterceptTarget = {
    bridge: "k6t-0123456789a",
    bridgeMac: "aa:00:00:00:00:01",
    vmPorts: ["tap0123456789a"],
    sidecarPort: "imdb-0a1b2c3d4e",
    sidecarMac: "0e:00:00:00:00:02",
  };
  const rules = interceptRules([bridgeBinding, multus]);
  const redirects = rules.filter((rule) => rule.chain === "prerouting")
    .map((rule) => describeRule(newRule(INTERCEPT_TABLE, rule)));
  // One for 169.254.169.254 and one for fd00:ec2::254 per VM port.
  assertEquals(redirects.length, 4);
  // iifname "tap0123456789a" … ether daddr set 0e:00:00:00:00:02
  for (const redirect of redirects.slice(2)) {
    assertEquals(redirect[1], "[ cmp eq reg 1 0x30706174 0x34333231 0x38373635 0x00006139 ]");
    assertEquals(redirect[8], "[ immediate reg 1 0x0000000e 0x00000200 ]");
  }
  // Each sidecar port accepts only its own MAC, then drops the rest.
  const perPort = rules.filter((rule) => rule.chain === "forward").slice(5);
  assertEquals(perPort.length, 6);
});

Deno.test("the batch replaces the whole table atomically and declares both port sets", () => {
  const messages = interceptBatch([bridgeBinding]);
  const kinds = messages.map((message) => message.type & 0xff);
  // NEWTABLE, DELTABLE, NEWTABLE, 2 × NEWSET, 2 × NEWSETELEM, 4 × NEWCHAIN, rules.
  assertEquals(kinds.slice(0, 11), [0, 2, 0, 9, 9, 12, 12, 3, 3, 3, 3]);
  assertEquals(kinds.slice(11).every((kind) => kind === 6), true);
  assertEquals(kinds.length, 11 + interceptRules([bridgeBinding]).length);
});

Deno.test("a bridge whose VM port is not known yet still gets its drop rules", () => {
  const kinds = interceptBatch([{ ...bridgeBinding, vmPorts: [] }]).map((m) => m.type & 0xff);
  assertEquals(kinds.filter((kind) => kind === 12).length, 1); // only sidecar_ports has elements
  const chains = interceptRules([{ ...bridgeBinding, vmPorts: [] }]).map((rule) => rule.chain);
  assert(!chains.includes("prerouting"));
  assert(chains.includes("forward"));
});

Deno.test("removal creates the table if missing, then deletes it, so it never fails on absence", () => {
  assertEquals(removalBatch().map((message) => message.type & 0xff), [0, 2]);
});
