import { assertEquals } from "../../../testing/assert.ts";
import {
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  icmpv6Checksum,
  parseNeighborSolicitation,
} from "./icmpv6_ndp.ts";

const bytes = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
const hex = (data: Uint8Array) => [...data].map((b) => b.toString(16).padStart(2, "0")).join("");

// What Linux sent (tcpdump -xx) when fe80::a on 02:00:00:00:00:0a first sent to fd00:ec2::254
// through an on-link route: a solicitation to the solicited-node group ff02::1:ff00:254.
const LINUX_SOLICITATION = "3333ff0002540200000000 0a86dd6000000000203aff" +
  "fe80000000000000000000000000000a" + "ff0200000000000000000001ff000254" +
  "8700689f00000000fd000ec2000000000000000000000254" + "01010200000000 0a";

Deno.test("a solicitation from Linux is parsed, and built byte for byte (checksum included)", () => {
  const frame = bytes(LINUX_SOLICITATION.replaceAll(" ", ""));
  assertEquals(parseNeighborSolicitation(frame), {
    ethernetSource: "02:00:00:00:00:0a",
    sourceIp: "fe80::a",
    destinationIp: "ff02::1:ff00:254",
    target: "fd00:ec2::254",
    sourceLinkAddress: "02:00:00:00:00:0a",
  });
  assertEquals(
    hex(buildNeighborSolicitation("02:00:00:00:00:0a", "fe80::a", "fd00:ec2::254")),
    hex(frame),
  );
});

Deno.test("the advertisement answers the asker: solicited, override, target link-layer address", () => {
  const solicitation = parseNeighborSolicitation(
    buildNeighborSolicitation("02:00:00:00:00:0a", "fe80::a", "fd00:ec2::254"),
  )!;
  const frame = buildNeighborAdvertisement(solicitation, "fd00:ec2::254", "fe:01:02:03:04:05");
  assertEquals(hex(frame.subarray(0, 14)), "0200000000 0a fe0102030405 86dd".replaceAll(" ", ""));
  assertEquals([frame[20], frame[21]], [58, 255]); // ICMPv6, hop limit 255
  assertEquals(hex(frame.subarray(22, 38)), "fd000ec2000000000000000000000254");
  assertEquals(hex(frame.subarray(38, 54)), "fe80000000000000000000000000000a");
  const icmp = frame.subarray(54);
  assertEquals([icmp[0], icmp[1], icmp[4]], [136, 0, 0x60]);
  assertEquals(hex(icmp.subarray(8, 24)), "fd000ec2000000000000000000000254");
  assertEquals(hex(icmp.subarray(24)), "0201fe0102030405");
  // A correct checksum makes the sum over the message with it come out as zero.
  assertEquals(icmpv6Checksum(frame.subarray(22, 38), frame.subarray(38, 54), icmp), 0);
});

Deno.test("anything but a well-formed solicitation is refused", () => {
  const good = buildNeighborSolicitation("02:00:00:00:00:0a", "fe80::a", "fd00:ec2::254");
  const changed = (at: number, value: number) => {
    const copy = good.slice();
    copy[at] = value;
    return copy;
  };
  assertEquals(parseNeighborSolicitation(good.subarray(0, 70)), null); // truncated
  assertEquals(parseNeighborSolicitation(changed(21, 64)), null); // routed: hop limit not 255
  assertEquals(parseNeighborSolicitation(changed(20, 0)), null); // an extension header first
  assertEquals(parseNeighborSolicitation(changed(54, 136)), null); // an advertisement
  assertEquals(parseNeighborSolicitation(changed(55, 1)), null); // code not 0
  assertEquals(parseNeighborSolicitation(changed(79, 0)), null); // an option of length 0
  assertEquals(parseNeighborSolicitation(changed(12, 0x08)), null); // not IPv6
});
