import { assertEquals } from "../../../testing/assert.ts";
import { buildTcpSyn, parseTcpSyn, readdressFrame, type SynFrameOptions } from "./syn_packet.ts";
import { formatMac } from "./ethernet.ts";

const syn: SynFrameOptions = {
  sourceMac: "62:27:19:f3:0a:ef",
  destinationMac: "c2:cd:45:cb:7a:6e",
  sourceIp: "169.254.100.100",
  destinationIp: "169.254.169.254",
  destinationPort: 80,
};

Deno.test("a SYN tells who connects, from which MAC, to which address and port", () => {
  assertEquals(parseTcpSyn(buildTcpSyn(syn)), {
    ethernetSource: "62:27:19:f3:0a:ef",
    sourceIp: "169.254.100.100",
    destinationIp: "169.254.169.254",
    destinationPort: 80,
  });
});

Deno.test("only an unfragmented SYN without ACK counts as a connection request", () => {
  assertEquals(parseTcpSyn(buildTcpSyn({ ...syn, flags: 0x12 })), null);
  assertEquals(parseTcpSyn(buildTcpSyn({ ...syn, fragment: 0x2000 | 3 })), null);
  assertEquals(parseTcpSyn(buildTcpSyn(syn).subarray(0, 47)), null, "no TCP flags");
  const udp = buildTcpSyn(syn);
  udp[23] = 17;
  assertEquals(parseTcpSyn(udp), null);
});

/** Sum of the TCP pseudo-header and segment; 0xffff when the checksum field is right. */
function tcpChecksumSum(frame: Uint8Array): number {
  const words: number[] = [];
  const push = (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i += 2) words.push((bytes[i] << 8) | (bytes[i + 1] ?? 0));
  };
  push(frame.subarray(26, 34)); // source and destination addresses
  words.push(6, frame.length - 34); // protocol, TCP length
  push(frame.subarray(34));
  let sum = words.reduce((a, b) => a + b, 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

Deno.test("a re-addressed SYN goes to the new MAC and carries a correct TCP checksum", () => {
  // As seen on a packet socket when the guest's NIC offloads checksums: field not filled in.
  const frame = buildTcpSyn(syn);
  const copy = readdressFrame(frame, "de:02:98:1b:1a:61");
  assertEquals(formatMac(copy.subarray(0, 6)), "de:02:98:1b:1a:61");
  assertEquals(tcpChecksumSum(copy), 0xffff);
  assertEquals([...copy.subarray(6, 50)], [...frame.subarray(6, 50)], "addresses, ports, flags");
  assertEquals(formatMac(frame.subarray(0, 6)), "c2:cd:45:cb:7a:6e", "the original is untouched");
  assertEquals(
    [...readdressFrame(copy, "de:02:98:1b:1a:61")],
    [...copy],
    "a correct checksum stays as it is",
  );
});
