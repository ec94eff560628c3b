import { assert, assertEquals, assertThrows } from "../../../testing/assert.ts";
import {
  formatIpv4,
  ipv4Number,
  isLinkLocalUnicast,
  LINK_LOCAL_PREFIX,
  onLinkLocalNetwork,
  parseCidr,
  parseIpv4,
  prefixContains,
} from "./ipv4.ts";

Deno.test("IPv4 text round-trips, and bad text is named in the error", () => {
  assertEquals(formatIpv4(parseCidr("169.254.169.254/32").address), "169.254.169.254");
  assertEquals(parseCidr("10.0.0.0/8").prefix, 8);
  assertEquals(parseCidr("10.0.0.1").prefix, 32);
  assertEquals(ipv4Number("169.254.169.254"), 0xa9fea9fe);
  assertThrows(() => parseIpv4("169.254.169.256"), /"169.254.169.256" is not an IPv4 address/);
  assertThrows(() => parseIpv4("169.254.169"), /not an IPv4 address/);
  assertThrows(() => parseCidr("10.0.0.0/33"), /bad prefix/);
});

Deno.test("prefixContains answers with the prefix length of a matching prefix", () => {
  assertEquals(prefixContains("0.0.0.0/0", "10.1.2.3"), 0);
  assertEquals(prefixContains(LINK_LOCAL_PREFIX, "169.254.0.7"), 16);
  assertEquals(prefixContains("169.254.1.1/32", "169.254.1.1"), 32);
  assertEquals(prefixContains("169.254.1.1", "169.254.1.2"), undefined);
  assertEquals(prefixContains("10.0.0.0/8", "not an address"), undefined);
  assertEquals(prefixContains("10.0.0.0/40", "10.0.0.1"), undefined);
});

Deno.test("RFC 3927 link-local unicast: 169.254.1.0 to 169.254.254.255", () => {
  assert(isLinkLocalUnicast("169.254.1.0"));
  assert(
    isLinkLocalUnicast("169.254.169.254"),
    "the range alone; the metadata address is no guest",
  );
  assert(isLinkLocalUnicast("169.254.254.255"));
  for (const ip of ["169.254.0.7", "169.254.255.1", "10.0.2.2", "169.254.1"]) {
    assert(!isLinkLocalUnicast(ip), ip);
  }
  assert(onLinkLocalNetwork("169.254.0.7") && onLinkLocalNetwork("169.254.255.255"), "reserved");
  assert(!onLinkLocalNetwork("10.0.2.2"));
});
