import { assertEquals } from "../../../testing/assert.ts";
import { arpRequestFilter, runFilter } from "./arp_filter.ts";
import { buildArpReply, buildArpRequest, parseArpFrame } from "./arp_packet.ts";

const filter = arpRequestFilter("169.254.169.254");

Deno.test("the socket filter is 8 instructions with the target address as a host-order constant", () => {
  assertEquals(filter.length, 64);
  const view = new DataView(filter.buffer);
  assertEquals(view.getUint32(5 * 8 + 4, true), 0xa9fea9fe);
});

Deno.test("the socket filter keeps who-has for the metadata address only", () => {
  const request = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.254");
  assertEquals(runFilter(filter, request), 0xffff);
  const other = buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.253");
  assertEquals(runFilter(filter, other), 0);
  const reply = buildArpReply(parseArpFrame(request)!, "169.254.169.254", "c2:cd:45:cb:7a:6e");
  assertEquals(runFilter(filter, reply), 0);
  const ipv4 = request.slice();
  ipv4[13] = 0x00; // ethertype 0x0800
  assertEquals(runFilter(filter, ipv4), 0);
  assertEquals(runFilter(filter, request.subarray(0, 20)), 0, "a runt frame is dropped");
});
