/**
 * The one FFI binding into libc used by the sidecar's network code (rtnetlink,
 * nftables over netlink, AF_PACKET). Every call that can fail goes through
 * `check`, which turns -1 into an Error naming the call and the errno.
 *
 * Blocking calls that may wait for the network (`poll`) are also bound as
 * nonblocking FFI calls, which run on another thread; errno is unreliable
 * after those, so their callers must not read it.
 */

const symbols = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  pollAsync: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

export type LibcSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

let library: Deno.DynamicLibrary<typeof symbols> | undefined;

/** libc's symbols, opened on first use (needs --allow-ffi). */
export function libc(): LibcSymbols {
  library ??= Deno.dlopen("libc.so.6", symbols);
  return library.symbols;
}

/** The calling thread's errno; only meaningful right after a synchronous call failed. */
export function errno(): number {
  const pointer = libc().__errno_location();
  return pointer ? new Deno.UnsafePointerView(pointer).getInt32() : 0;
}

export function strerror(code: number): string {
  const pointer = libc().strerror(code);
  return pointer ? Deno.UnsafePointerView.getCString(pointer) : `errno ${code}`;
}

/** An error from a failed libc call, carrying errno (e.g. 17 EEXIST, 1 EPERM). */
export interface SyscallError extends Error {
  name: "SyscallError";
  errno: number;
  call: string;
}

export function syscallError(call: string, code: number): SyscallError {
  const error = new Error(`${call} failed: ${strerror(code)} (errno ${code})`) as SyscallError;
  error.name = "SyscallError";
  error.errno = code;
  error.call = call;
  return error;
}

export function isSyscallError(error: unknown, code?: number): error is SyscallError {
  return error instanceof Error && error.name === "SyscallError" &&
    (code === undefined || (error as SyscallError).errno === code);
}

/** Returns `result` as a number, or throws a SyscallError when it is negative. */
export function check(call: string, result: number | bigint): number {
  const value = Number(result);
  if (value < 0) throw syscallError(call, errno());
  return value;
}

/** A NUL-terminated C string. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** The kernel's index for an interface name, or 0 when there is none. */
export function interfaceIndex(name: string): number {
  return libc().if_nametoindex(cString(name));
}

// Constants from <sys/socket.h>, <linux/if_ether.h>, <poll.h>, <sys/eventfd.h>, <errno.h>.
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IP = 0x0800;
export const ETH_P_ALL = 0x0003;
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EAGAIN = 11;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EADDRNOTAVAIL = 99;
