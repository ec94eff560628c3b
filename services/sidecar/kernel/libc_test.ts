import { assert, assertEquals, assertThrows } from "../../../testing/assert.ts";
import {
  check,
  cString,
  errno,
  interfaceIndex,
  interfaceName,
  isSyscallError,
  libc,
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
