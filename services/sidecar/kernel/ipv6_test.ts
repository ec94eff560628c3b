import { assertEquals, assertThrows } from "../../../testing/assert.ts";
import { formatIpv6, ipv6Bytes, isIpv6LinkLocal, parseIpv6, parseIpv6Cidr } from "./ipv6.ts";

const hex = (bytes: Uint8Array) =>
  [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");

Deno.test("IPv6 text becomes the 16 bytes the kernel uses, and back in RFC 5952 form", () => {
  assertEquals(hex(parseIpv6("fd00:ec2::254")), "fd000ec2000000000000000000000254");
  assertEquals(hex(parseIpv6("::1")), "00000000000000000000000000000001");
  assertEquals(hex(parseIpv6("FE80::A9FE:A9FE")), "fe8000000000000000000000a9fea9fe");
  assertEquals(formatIpv6(parseIpv6("fd00:0ec2:0:0:0:0:0:0254")), "fd00:ec2::254");
  assertEquals(formatIpv6(parseIpv6("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
  assertEquals(formatIpv6(parseIpv6("1:2:3:4:5:6:7:8")), "1:2:3:4:5:6:7:8");
  assertEquals(formatIpv6(parseIpv6("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");
  assertEquals(formatIpv6(new Uint8Array(16)), "::");
});

Deno.test("anything that is not a plain IPv6 address is refused", () => {
  for (
    const text of [
      "",
      "1::2::3",
      "fe80::1%eth0",
      "::ffff:1.2.3.4",
      "1:2:3:4:5:6:7",
      "12345::",
      "g::1",
    ]
  ) {
    assertEquals(ipv6Bytes(text), undefined, text);
  }
  assertThrows(() => parseIpv6("10.0.0.1"), /not an IPv6 address/);
  assertThrows(() => parseIpv6Cidr("::1/129"), /bad prefix/);
  assertEquals(parseIpv6Cidr("fd00:ec2::254").prefix, 128);
});

Deno.test("link-local addresses are fe80::/10", () => {
  assertEquals(isIpv6LinkLocal(parseIpv6("fe80::1")), true);
  assertEquals(isIpv6LinkLocal(parseIpv6("febf::1")), true);
  assertEquals(isIpv6LinkLocal(parseIpv6("fec0::1")), false);
  assertEquals(isIpv6LinkLocal(parseIpv6("fd00:ec2::254")), false);
});
