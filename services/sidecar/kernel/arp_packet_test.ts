import { assertEquals } from "../../../testing/assert.ts";
import {
  ARP_REPLY,
  ARP_REQUEST,
  buildArpReply,
  buildArpRequest,
  isRequestFor,
  parseArpFrame,
} from "./arp_packet.ts";

const hex = (text: string) => Uint8Array.from(text.match(/../g)!.map((b) => parseInt(b, 16)));

// A who-has 169.254.169.254 from 169.254.100.100 (62:27:19:f3:0a:ef), as a guest sends it.
const REQUEST = hex(
  "ffffffffffff" + "622719f30aef" + "0806" + "0001" + "0800" + "06" + "04" + "0001" +
    "622719f30aef" + "a9fe6464" + "000000000000" + "a9fea9fe",
);

Deno.test("parseArpFrame reads a who-has request byte for byte", () => {
  assertEquals(parseArpFrame(REQUEST), {
    op: ARP_REQUEST,
    ethernetSource: "62:27:19:f3:0a:ef",
    senderMac: "62:27:19:f3:0a:ef",
    senderIp: "169.254.100.100",
    targetMac: "00:00:00:00:00:00",
    targetIp: "169.254.169.254",
  });
});

Deno.test("buildArpReply answers the asker with the given MAC", () => {
  const reply = buildArpReply(parseArpFrame(REQUEST)!, "169.254.169.254", "c2:cd:45:cb:7a:6e");
  assertEquals(
    reply,
    hex(
      "622719f30aef" + "c2cd45cb7a6e" + "0806" + "0001" + "0800" + "06" + "04" + "0002" +
        "c2cd45cb7a6e" + "a9fea9fe" + "622719f30aef" + "a9fe6464",
    ),
  );
  assertEquals(parseArpFrame(reply)!.op, ARP_REPLY);
});

Deno.test("buildArpRequest produces what parseArpFrame and the guest agree on", () => {
  assertEquals(buildArpRequest("62:27:19:f3:0a:ef", "169.254.100.100", "169.254.169.254"), REQUEST);
});

Deno.test("only who-has for the metadata address deserves an answer", () => {
  const forUs = parseArpFrame(REQUEST)!;
  assertEquals(isRequestFor(forUs, "169.254.169.254"), true);
  assertEquals(isRequestFor({ ...forUs, targetIp: "169.254.169.253" }, "169.254.169.254"), false);
  assertEquals(isRequestFor({ ...forUs, op: ARP_REPLY }, "169.254.169.254"), false);
  // A gratuitous ARP claiming the address is not a question.
  assertEquals(isRequestFor({ ...forUs, senderIp: "169.254.169.254" }, "169.254.169.254"), false);
});

Deno.test("parseArpFrame ignores short frames, other ethertypes and non-IPv4 ARP", () => {
  assertEquals(parseArpFrame(REQUEST.subarray(0, 41)), null);
  const ipv4 = REQUEST.slice();
  ipv4[12] = 0x08;
  ipv4[13] = 0x00;
  assertEquals(parseArpFrame(ipv4), null);
  const otherProtocol = REQUEST.slice();
  otherProtocol[16] = 0x86;
  otherProtocol[17] = 0xdd;
  assertEquals(parseArpFrame(otherProtocol), null);
});
