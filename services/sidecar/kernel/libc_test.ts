import { assert, assertEquals, assertThrows } from "../../../testing/assert.ts";
import {
  check,
  cString,
  errno,
  interfaceIndex,
  interfaceName,
  isSyscallError,
  libc,
  pollForInput,
  POLLIN,
  sockaddrLl,
  sockaddrLlInterface,
  sockaddrLlPacketType,
} from "./libc.ts";

const EBADF = 9;

Deno.test("cString appends exactly one NUL byte", () => {
  assertEquals([...cString("lo")], [0x6c, 0x6f, 0]);
});

Deno.test("interfaceIndex finds loopback and returns 0 for an unknown name", () => {
  assert(interfaceIndex("lo") > 0);
  assertEquals(interfaceIndex("no-such-if0"), 0);
});

Deno.test("check turns a failed call into an error naming the call and errno", () => {
  const result = libc().close(-1);
  assertEquals(errno(), EBADF);
  const error = assertThrows(() => check("close", result), /^close failed: .* \(errno 9\)$/);
  assert(isSyscallError(error, EBADF));
});

Deno.test("interfaceName maps an index back to its name", () => {
  assertEquals(interfaceName(interfaceIndex("lo")), "lo");
  assertEquals(interfaceName(0x7ffffff0), undefined);
});

Deno.test("sockaddr_ll puts the protocol in network order and the ifindex in host order", () => {
  assertEquals([...sockaddrLl(5, 0x0806)], [
    17,
    0,
    0x08,
    0x06,
    5,
    0,
    0,
    0,
    ...new Array(12).fill(0),
  ]);
});

Deno.test("sockaddr_ll fields filled in by recvfrom are read back", () => {
  const sockaddr = sockaddrLl(7, 0x0003);
  sockaddr[10] = 4;
  assertEquals(sockaddrLlInterface(sockaddr), 7);
  assertEquals(sockaddrLlPacketType(sockaddr), 4);
});

Deno.test("struct pollfd: fd, then events, then revents, 8 bytes each, host order", () => {
  const fds = pollForInput([3, 0x01020304]);
  assertEquals(fds.count, 2n);
  assertEquals([...fds.bytes], [3, 0, 0, 0, POLLIN, 0, 0, 0, 4, 3, 2, 1, POLLIN, 0, 0, 0]);
  assert(!fds.readable(0));
  fds.bytes[14] = POLLIN; // revents of the second entry, as poll() would set it
  assert(fds.readable(1) && !fds.readable(0));
});

Deno.test("poll reports a readable eventfd through pollForInput", () => {
  const fd = libc().eventfd(1, 0);
  try {
    const fds = pollForInput([fd]);
    assertEquals(libc().poll(fds.bytes, fds.count, 0), 1);
    assert(fds.readable(0));
  } finally {
    libc().close(fd);
  }
});
