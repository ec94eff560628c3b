import { assertEquals, assertThrows } from "../../../testing/assert.ts";
import { ETH_P_ARP, ETH_P_IP, ethertypeBytes, parseMac } from "./ethernet.ts";
import { parseIpv4 } from "./ipv4.ts";
import {
  batch,
  cmp,
  describeRule,
  formatRegisterData,
  ifnameBytes,
  immediateValue,
  ipv4SourceIs,
  ipv6DestinationIs,
  ipv6SourceIs,
  lookup,
  metaLoad,
  newChain,
  newIfnameSet,
  newIfnameSetElements,
  newRule,
  NF_ACCEPT,
  NF_BR_PRE_ROUTING,
  NF_BR_PRI_DSTNAT,
  NF_DROP,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFPROTO_BRIDGE,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_META_IIFNAME,
  NFT_META_OIFNAME,
  NFT_META_PROTOCOL,
  NFT_PAYLOAD_LL_HEADER,
  NFT_PAYLOAD_NETWORK_HEADER,
  payloadLoad,
  payloadWrite,
  setIpv4Ttl,
  setIpv6HopLimit,
  verdict,
} from "./nftables.ts";

// Payloads (after the 16-byte nlmsghdr) that nft 1.0.6 sent for this file, captured with
// `nft --debug=mnl -f` in an empty network namespace:
//   table bridge t {
//     set sp { type ifname; }
//     chain pre { type filter hook prerouting priority dstnat; policy accept; }
//   }
//   add element bridge t sp { "imdb-eth0" }
//   add rule bridge t pre iifname "tap0" ether daddr != 92:f0:9b:22:5d:c0 \
//     ip daddr 169.254.169.254 ether daddr set 0e:1d:5a:00:00:01
//   add rule bridge t pre oifname != @sp drop
const NFT_SENT = {
  chain:
    "07000000060001007400000008000300707265000b00070066696c746572000008000500000000011400048008000100" +
    "0000000008000200fffffed4",
  set:
    "070000000600010074000000070002007370000008000300000000000800040000000029080005000000001008000a00" +
    "000000010a000d000004010000000000",
  elements:
    "07000000060001007400000007000200737000000800040000000001200003801c0001801800018014000100696d6462" +
    "2d6574683000000000000000",
  redirectRule:
    "0700000006000100740000000800020070726500d801048024000180090001006d657461000000001400028008000200" +
    "0000000608000100000000013800018008000100636d70002c0002800800010000000001080002000000000018000380" +
    "1400010074617030000000000000000000000000340001800c0001007061796c6f616400240002800800010000000001" +
    "0800020000000000080003000000000008000400000000063000018008000100636d7000240002800800010000000001" +
    "0800020000000001100003800a00010092f09b225dc0000024000180090001006d657461000000001400028008000200" +
    "0000000108000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380" +
    "0600010008000000340001800c0001007061796c6f616400240002800800010000000001080002000000000108000300" +
    "0000001008000400000000042c00018008000100636d700020000280080001000000000108000200000000000c000380" +
    "08000100a9fea9fe300001800e000100696d6d6564696174650000001c0002800800010000000001100002800a000100" +
    "0e1d5a0000010000340001800c0001007061796c6f616400240002800800050000000001080002000000000008000300" +
    "000000000800040000000006",
  lookupRule:
    "07000000060001007400000008000200707265008c00048024000180090001006d657461000000001400028008000200" +
    "000000070800010000000001340001800b0001006c6f6f6b757000002400028008000200000000010700010073700000" +
    "08000400000000010800050000000001300001800e000100696d6d6564696174650000001c0002800800010000000000" +
    "100002800c0002800800010000000000",
};

const hex = (bytes: Uint8Array) =>
  [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
const t = { family: NFPROTO_BRIDGE, table: "t" };
const sp = { name: "sp", id: 1, elements: ["imdb-eth0"] };

const redirectExprs = [
  metaLoad(NFT_META_IIFNAME),
  cmp(NFT_CMP_EQ, ifnameBytes("tap0")),
  payloadLoad(NFT_PAYLOAD_LL_HEADER, 0, 6),
  cmp(NFT_CMP_NEQ, parseMac("92:f0:9b:22:5d:c0")),
  metaLoad(NFT_META_PROTOCOL),
  cmp(NFT_CMP_EQ, ethertypeBytes(ETH_P_IP)),
  payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),
  cmp(NFT_CMP_EQ, parseIpv4("169.254.169.254")),
  immediateValue(parseMac("0e:1d:5a:00:00:01")),
  payloadWrite(NFT_PAYLOAD_LL_HEADER, 0, 6),
];

Deno.test("a base chain is encoded byte for byte as nft sends it", () => {
  const message = newChain(t, { name: "pre", hook: NF_BR_PRE_ROUTING, priority: NF_BR_PRI_DSTNAT });
  assertEquals(hex(message.payload), NFT_SENT.chain);
  assertEquals(message.type, (10 << 8) | 3);
});

Deno.test("an interface-name set and its elements are encoded as nft sends them", () => {
  assertEquals(hex(newIfnameSet(t, sp).payload), NFT_SENT.set);
  assertEquals(hex(newIfnameSetElements(t, sp).payload), NFT_SENT.elements);
});

Deno.test("the redirect rule is encoded byte for byte as nft sends it", () => {
  assertEquals(
    hex(newRule(t, { chain: "pre", exprs: redirectExprs }).payload),
    NFT_SENT.redirectRule,
  );
});

Deno.test("an inverted set lookup with a drop verdict is encoded as nft sends it", () => {
  const rule = newRule(t, {
    chain: "pre",
    exprs: [metaLoad(NFT_META_OIFNAME), lookup("sp", 1, true), verdict(NF_DROP)],
  });
  assertEquals(hex(rule.payload), NFT_SENT.lookupRule);
});

Deno.test("describeRule prints what `nft --debug=netlink` prints for the same rule", () => {
  assertEquals(describeRule(newRule(t, { chain: "pre", exprs: redirectExprs })), [
    "[ meta load iifname => reg 1 ]",
    "[ cmp eq reg 1 0x30706174 0x00000000 0x00000000 0x00000000 ]",
    "[ payload load 6b @ link header + 0 => reg 1 ]",
    "[ cmp neq reg 1 0x229bf092 0x0000c05d ]",
    "[ meta load protocol => reg 1 ]",
    "[ cmp eq reg 1 0x00000008 ]",
    "[ payload load 4b @ network header + 16 => reg 1 ]",
    "[ cmp eq reg 1 0xfea9fea9 ]",
    "[ immediate reg 1 0x005a1d0e 0x00000100 ]",
    "[ payload write reg 1 => 6b @ link header + 0 csum_type 0 csum_off 0 csum_flags 0x0 ]",
  ]);
});

Deno.test("batches are framed by BEGIN/END markers addressed to the nftables subsystem", () => {
  const messages = batch([newChain(t, { name: "pre", hook: 0, priority: 0 })]);
  assertEquals(messages.map((m) => m.type), [
    NFNL_MSG_BATCH_BEGIN,
    (10 << 8) | 3,
    NFNL_MSG_BATCH_END,
  ]);
  assertEquals(hex(messages[0].payload), "0000000a");
  assertEquals(hex(messages[2].payload), "0000000a");
});

Deno.test("register data is printed as little-endian 32-bit words, zero-padded", () => {
  assertEquals(formatRegisterData(ethertypeBytes(ETH_P_ARP)), "0x00000608");
  assertEquals(formatRegisterData(parseIpv4("169.254.169.254")), "0xfea9fea9");
});

Deno.test("values that cannot be encoded are refused with the offending text", () => {
  assertThrows(() => ifnameBytes("a-name-of-16-chr"), /interface name too long: a-name-of-16-chr/);
  assertEquals(ifnameBytes("a-name-of-15-ch").length, 16);
});

// Captured with `nft --debug=mnl` (nft 1.0.6) in an empty network namespace, after
// `table ip h { chain output { type filter hook output priority mangle; } }` and the same ip6 table:
//   add rule ip h output ip saddr 169.254.169.254 ip ttl set 1
//   add rule ip6 h output ip6 saddr fd00:ec2::254 ip6 hoplimit set 1
//   add rule ip6 h output ip6 daddr fd00:ec2::254 iifname "lo" accept
const NFT_SENT_HOP_LIMIT = {
  ttlRule:
    "0200000006000100680000000b0002006f7574707574000028010480340001800c0001007061796c6f616400240002" +
    "8008000100000000010800020000000001080003000000000c08000400000000042c00018008000100636d70002000" +
    "0280080001000000000108000200000000000c00038008000100a9fea9fe340001800c0001007061796c6f61640024" +
    "00028008000100000000010800020000000001080003000000000808000400000000024c0001800c00010062697477" +
    "697365003c00028008000100000000010800020000000001080006000000000008000300000000020c000480060001" +
    "0000ff00000c0005800600010001000000440001800c0001007061796c6f6164003400028008000500000000010800" +
    "020000000001080003000000000808000400000000020800060000000001080007000000000a",
  hopLimitRule:
    "0a00000006000100680000000b0002006f75747075740000d0000480340001800c0001007061796c6f616400240002" +
    "8008000100000000010800020000000001080003000000000808000400000000103800018008000100636d70002c00" +
    "0280080001000000000108000200000000001800038014000100fd000ec20000000000000000000002542c0001800e" +
    "000100696d6d6564696174650000001800028008000100000000010c0002800500010001000000340001800c000100" +
    "7061796c6f616400240002800800050000000001080002000000000108000300000000070800040000000001",
  ipv6DestinationRule:
    "0a00000006000100680000000b0002006f75747075740000fc000480340001800c0001007061796c6f616400240002" +
    "8008000100000000010800020000000001080003000000001808000400000000103800018008000100636d70002c00" +
    "0280080001000000000108000200000000001800038014000100fd000ec2000000000000000000000254240001800900" +
    "01006d6574610000000014000280080002000000000608000100000000013800018008000100636d70002c00028008" +
    "00010000000001080002000000000018000380140001006c6f0000000000000000000000000000300001800e000100" +
    "696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001",
};

Deno.test("TTL and hop limit rewrites for replies are encoded byte for byte as nft sends them", () => {
  const ip = { family: NFPROTO_IPV4, table: "h" };
  const ip6 = { family: NFPROTO_IPV6, table: "h" };
  const ttl = newRule(ip, {
    chain: "output",
    exprs: [...ipv4SourceIs("169.254.169.254"), ...setIpv4Ttl(1)],
  });
  assertEquals(hex(ttl.payload), NFT_SENT_HOP_LIMIT.ttlRule);
  const hopLimit = newRule(ip6, {
    chain: "output",
    exprs: [...ipv6SourceIs("fd00:ec2::254"), ...setIpv6HopLimit(1)],
  });
  assertEquals(hex(hopLimit.payload), NFT_SENT_HOP_LIMIT.hopLimitRule);
  const accept = newRule(ip6, {
    chain: "output",
    exprs: [
      ...ipv6DestinationIs("fd00:ec2::254"),
      metaLoad(NFT_META_IIFNAME),
      cmp(NFT_CMP_EQ, ifnameBytes("lo")),
      verdict(NF_ACCEPT),
    ],
  });
  assertEquals(hex(accept.payload), NFT_SENT_HOP_LIMIT.ipv6DestinationRule);
});
