import { assert, assertEquals, assertThrows } from "../../../testing/assert.ts";
import { isSyscallError } from "./libc.ts";
import {
  attr,
  attrStr,
  attrTable,
  attrU16be,
  attrU32,
  closeNetlink,
  concat,
  dump,
  DUMP_ATTEMPTS,
  type DumpExchange,
  encodeMessage,
  isDumpInterrupted,
  nested,
  NETLINK_ROUTE,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  openNetlink,
  parseAttrs,
  parseError,
  parseMessages,
  request,
  runDump,
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

// ---- interrupted dumps (NLM_F_DUMP_INTR) --------------------------------------------------

const PORT = 4242;

/** One reply datagram of dump `seq`, as the kernel sends it: entries, then NLMSG_DONE. */
function dumpDatagram(seq: number, entries: number, interrupted: boolean): Uint8Array {
  const flags = NLM_F_MULTI | (interrupted ? NLM_F_DUMP_INTR : 0);
  const parts = [];
  for (let i = 0; i < entries; i++) {
    parts.push(encodeMessage({ type: 16, flags, seq, pid: PORT, payload: Uint8Array.of(i) }));
  }
  parts.push(
    encodeMessage({ type: NLMSG_DONE, flags, seq, pid: PORT, payload: new Uint8Array(4) }),
  );
  return concat(...parts);
}

/** A dump exchange whose first `interrupted` answers carry NLM_F_DUMP_INTR. */
function fakeExchange(interrupted: number): DumpExchange & { sent: number } {
  let seq = 100;
  const exchange = {
    sent: 0,
    portId: PORT,
    send() {
      exchange.sent++;
      return ++seq;
    },
    receive() {
      return parseMessages(dumpDatagram(seq, 2, exchange.sent <= interrupted));
    },
  };
  return exchange;
}

Deno.test("a dump reply with NLM_F_DUMP_INTR (0x10 in nlmsg_flags) is recognised from its bytes", () => {
  const marked = dumpDatagram(7, 1, true);
  assertEquals(new DataView(marked.buffer).getUint16(6, true), 0x12, "NLM_F_MULTI|DUMP_INTR");
  assertEquals(NLM_F_DUMP_INTR, 0x10);
  assert(isDumpInterrupted(parseMessages(marked)));
  assert(!isDumpInterrupted(parseMessages(dumpDatagram(7, 1, false))));
  // Only on NLMSG_DONE: the kernel may notice the change at the very end.
  const doneOnly = concat(
    encodeMessage({ type: 16, flags: NLM_F_MULTI, seq: 7, pid: PORT, payload: Uint8Array.of(0) }),
    encodeMessage({
      type: NLMSG_DONE,
      flags: NLM_F_MULTI | NLM_F_DUMP_INTR,
      seq: 7,
      pid: PORT,
      payload: new Uint8Array(4),
    }),
  );
  assert(isDumpInterrupted(parseMessages(doneOnly)));
});

Deno.test("an interrupted dump is read again, and the caller is told how many were discarded", () => {
  const exchange = fakeExchange(3);
  const retried: number[] = [];
  const replies = runDump(exchange, "list network interfaces", {
    onRetried: (n) => retried.push(n),
  });
  assertEquals(exchange.sent, 4);
  assertEquals(replies.map((reply) => reply.payload[0]), [0, 1], "only the whole dump's entries");
  assertEquals(retried, [3]);
});

Deno.test("a dump that was never interrupted is read once and reports nothing", () => {
  const exchange = fakeExchange(0);
  let told = false;
  assertEquals(runDump(exchange, "list", { onRetried: () => (told = true) }).length, 2);
  assertEquals(exchange.sent, 1);
  assert(!told);
});

Deno.test("a dump interrupted on every attempt fails after 10 attempts, saying so", () => {
  const exchange = fakeExchange(Infinity);
  assertThrows(
    () => runDump(exchange, "list network interfaces"),
    /^list network interfaces: the kernel interrupted the dump 10 times in a row/,
  );
  assertEquals(exchange.sent, DUMP_ATTEMPTS);
  assertEquals(DUMP_ATTEMPTS, 10);
});
