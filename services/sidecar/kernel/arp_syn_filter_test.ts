import { assertEquals } from "../../../testing/assert.ts";
import { metadataTrafficFilter, runFilter } from "./arp_syn_filter.ts";
import { buildArpReply, buildArpRequest, parseArpFrame } from "./arp_packet.ts";
import { buildTcpSyn, type SynFrameOptions } from "./syn_packet.ts";
import {
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  parseNeighborSolicitation,
} from "./icmpv6_ndp.ts";
import { parseIpv6 } from "./ipv6.ts";

const filter = metadataTrafficFilter("169.254.169.254");
const KEEP = 0xffff;

Deno.test("the socket filter carries the target address as a host-order constant", () => {
  const view = new DataView(filter.buffer);
  const constants = Array.from(
    { length: filter.length / 8 },
    (_, i) => view.getUint32(i * 8 + 4, true),
  );
  assertEquals(
    constants.filter((k) => k === 0xa9fea9fe).length,
    2,
    "ARP target and IPv4 destination",
  );
});

Deno.test("the socket filter keeps who-has for the metadata address only", () => {
  const request = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.254");
  assertEquals(runFilter(filter, request), KEEP);
  const other = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.253");
  assertEquals(runFilter(filter, other), 0);
  const reply = buildArpReply(parseArpFrame(request)!, "169.254.169.254", "c2:cd:45:cb:7a:6e");
  assertEquals(runFilter(filter, reply), 0);
  assertEquals(runFilter(filter, request.subarray(0, 20)), 0, "a runt frame is dropped");
});

const syn: SynFrameOptions = {
  sourceMac: "62:27:19:f3:0a:ef",
  destinationMac: "c2:cd:45:cb:7a:6e",
  sourceIp: "169.254.100.100",
  destinationIp: "169.254.169.254",
  destinationPort: 80,
};

Deno.test("the socket filter keeps TCP connection requests to the metadata address", () => {
  assertEquals(runFilter(filter, buildTcpSyn(syn)), KEEP);
  assertEquals(runFilter(filter, buildTcpSyn({ ...syn, destinationPort: 8080 })), KEEP);
  const withOptions = buildTcpSyn(syn);
  // The same SYN with a 24-byte IP header (one option word): the TCP flags move with it.
  const longer = new Uint8Array(withOptions.length + 4);
  longer.set(withOptions.subarray(0, 34));
  longer.set(withOptions.subarray(34), 38);
  longer[14] = 0x46;
  assertEquals(runFilter(filter, longer), KEEP);
});

Deno.test("the socket filter drops every other IPv4 packet", () => {
  assertEquals(runFilter(filter, buildTcpSyn({ ...syn, flags: 0x12 })), 0, "SYN-ACK");
  assertEquals(runFilter(filter, buildTcpSyn({ ...syn, flags: 0x10 })), 0, "ACK");
  assertEquals(runFilter(filter, buildTcpSyn({ ...syn, flags: 0x18 })), 0, "data");
  assertEquals(
    runFilter(filter, buildTcpSyn({ ...syn, destinationIp: "169.254.169.253" })),
    0,
    "another destination",
  );
  const udp = buildTcpSyn(syn);
  udp[23] = 17;
  assertEquals(runFilter(filter, udp), 0, "UDP");
  assertEquals(runFilter(filter, buildTcpSyn({ ...syn, fragment: 0x0001 })), 0, "later fragment");
  const ipv6 = buildTcpSyn(syn);
  ipv6[12] = 0x86;
  ipv6[13] = 0xdd;
  assertEquals(runFilter(filter, ipv6), 0, "another ethertype");
  assertEquals(runFilter(filter, buildTcpSyn(syn).subarray(0, 40)), 0, "truncated");
});

const dualFilter = metadataTrafficFilter("169.254.169.254", "fd00:ec2::254");

Deno.test("with an IPv6 address the filter also keeps neighbour solicitations for it, only", () => {
  const solicitation = buildNeighborSolicitation("02:00:00:00:00:0a", "fe80::a", "fd00:ec2::254");
  assertEquals(runFilter(dualFilter, solicitation), KEEP, "to the solicited-node group");
  const unicast = solicitation.slice();
  unicast.set([0xfe, 0x01, 0x02, 0x03, 0x04, 0x05], 0);
  unicast.set(parseIpv6("fd00:ec2::254"), 38);
  assertEquals(runFilter(dualFilter, unicast), KEEP, "unicast (a reachability check)");
  for (const other of ["fd00:ec2::253", "fe80::a9fe:a9fe", "fd00:ec3::254", "::254"]) {
    const frame = buildNeighborSolicitation("02:00:00:00:00:0a", "fe80::a", other);
    assertEquals(runFilter(dualFilter, frame), 0, other);
  }
  const advertisement = buildNeighborAdvertisement(
    parseNeighborSolicitation(solicitation)!,
    "fd00:ec2::254",
    "fe:01:02:03:04:05",
  );
  assertEquals(runFilter(dualFilter, advertisement), 0, "an advertisement");
  const routed = solicitation.slice();
  routed[21] = 64;
  assertEquals(runFilter(dualFilter, routed), 0, "hop limit below 255");
  assertEquals(runFilter(dualFilter, solicitation.subarray(0, 70)), 0, "truncated");
  assertEquals(runFilter(filter, solicitation), 0, "the IPv4-only filter drops it");
  // The IPv4 part is unchanged.
  assertEquals(runFilter(dualFilter, buildTcpSyn(syn)), KEEP);
  const request = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.254");
  assertEquals(runFilter(dualFilter, request), KEEP);
  assertEquals(runFilter(dualFilter, buildTcpSyn({ ...syn, flags: 0x12 })), 0, "SYN-ACK");
});
