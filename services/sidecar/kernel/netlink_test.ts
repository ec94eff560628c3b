import { assert, assertEquals } from "../../../testing/assert.ts";
import { isSyscallError } from "./libc.ts";
import {
  attr,
  attrStr,
  attrTable,
  attrU16be,
  attrU32,
  closeNetlink,
  dump,
  encodeMessage,
  nested,
  NETLINK_ROUTE,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  openNetlink,
  parseAttrs,
  parseError,
  parseMessages,
  request,
  str,
  u32,
} from "./netlink.ts";

Deno.test("attr pads its value to 4 bytes but records the unpadded length", () => {
  assertEquals([...attr(3, Uint8Array.of(0xaa))], [5, 0, 3, 0, 0xaa, 0, 0, 0]);
  assertEquals([...attrU32(1, 0x01020304)], [8, 0, 1, 0, 4, 3, 2, 1]);
  assertEquals([...attrU16be(2, 0x0806)], [6, 0, 2, 0, 0x08, 0x06, 0, 0]);
  assertEquals([...attrStr(3, "lo")], [7, 0, 3, 0, 0x6c, 0x6f, 0, 0]);
});

Deno.test("nested attributes hold their children and may carry NLA_F_NESTED", () => {
  const inner = attrU32(1, 7);
  const outer = nested(26, [inner, attrStr(2, "veth")]);
  assertEquals(outer.length, 4 + 8 + 12);
  const [parsed] = parseAttrs(outer);
  assertEquals(parsed.type, 26);
  const children = parseAttrs(parsed.value);
  assertEquals(children.map((child) => child.type), [1, 2]);
  assertEquals(u32(children[0].value), 7);
  assertEquals(str(children[1].value), "veth");

  const flagged = parseAttrs(nested(5, [inner], { flag: true }))[0];
  assertEquals(flagged.type, 5);
  assertEquals(flagged.rawType, 5 | NLA_F_NESTED);
});

Deno.test("parseAttrs stops at a truncated attribute; attrTable keeps the first of a type", () => {
  const bytes = new Uint8Array([...attrU32(1, 1), ...attrU32(1, 2), 12, 0, 4, 0, 1]);
  assertEquals(parseAttrs(bytes).length, 2);
  assertEquals(u32(attrTable(bytes).get(1)!), 1);
});

Deno.test("encodeMessage writes nlmsghdr in host order and parseMessages reads it back", () => {
  const bytes = encodeMessage({
    type: 18,
    flags: NLM_F_REQUEST | NLM_F_ACK,
    seq: 0x01020304,
    pid: 9,
    payload: Uint8Array.of(1, 2, 3),
  });
  assertEquals([...bytes.subarray(0, 16)], [19, 0, 0, 0, 18, 0, 5, 0, 4, 3, 2, 1, 9, 0, 0, 0]);
  assertEquals(bytes.length, 20);
  const two = new Uint8Array([...bytes, ...bytes]);
  const messages = parseMessages(two);
  assertEquals(messages.length, 2);
  assertEquals(messages[1].seq, 0x01020304);
  assertEquals([...messages[1].payload], [1, 2, 3]);
});

Deno.test("parseError reads errno and the extended-ack message of a capped error", () => {
  const echoed = encodeMessage({ type: 16, flags: 5, seq: 1, payload: new Uint8Array(0) });
  const errorCode = new Uint8Array(4);
  new DataView(errorCode.buffer).setInt32(0, -17, true);
  const payload = new Uint8Array([...errorCode, ...echoed, ...attrStr(1, "Link exists")]);
  const message = parseMessages(
    encodeMessage({
      type: NLMSG_ERROR,
      flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
      seq: 1,
      payload,
    }),
  )[0];
  assertEquals(parseError(message), { errno: 17, extackMessage: "Link exists" });
});

Deno.test("a real NETLINK_ROUTE socket dumps links and reports a refused request", () => {
  const sock = openNetlink(NETLINK_ROUTE);
  try {
    assert(sock.portId !== 0);
    // RTM_GETLINK dump with an empty ifinfomsg: loopback is always there.
    const links = dump(sock, { type: 18, payload: new Uint8Array(16) }, "list links");
    assert(links.length >= 1);
    // RTM_DELLINK on ifindex 0x7ffffff0 (no such device) → ENODEV.
    const ifinfo = new Uint8Array(16);
    new DataView(ifinfo.buffer).setInt32(4, 0x7ffffff0, true);
    let failure: unknown;
    try {
      request(sock, { type: 17, payload: ifinfo }, "delete link");
    } catch (error) {
      failure = error;
    }
    assert(isSyscallError(failure, 19), `expected ENODEV, got ${failure}`);
    assert((failure as Error).message.startsWith("delete link"));
  } finally {
    closeNetlink(sock);
  }
});
