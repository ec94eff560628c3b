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
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
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

/**
 * Attaches a classic BPF program (struct sock_filter[]) to a socket: SO_ATTACH_FILTER with a
 * struct sock_fprog { u16 len; u8 pad[6]; struct sock_filter *filter; }.
 */
export function attachSocketFilter(
  fd: number,
  program: Uint8Array<ArrayBuffer>,
  what: string,
): void {
  const fprog = new Uint8Array(16);
  const view = new DataView(fprog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(program))), true);
  check(
    `attach socket filter to ${what}`,
    libc().setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16),
  );
}

/** A `struct pollfd` array (int fd; short events; short revents) waiting for input. */
export interface PollFds {
  /** The array, to pass to poll() with `count`. */
  bytes: Uint8Array<ArrayBuffer>;
  count: bigint;
  /** Whether the `i`th descriptor was readable when poll() returned. */
  readable(i: number): boolean;
}

/** pollfds for POLLIN on each of `fds`, in order. */
export function pollForInput(fds: number[]): PollFds {
  const bytes = new Uint8Array(8 * fds.length);
  const view = new DataView(bytes.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(i * 8, fd, true);
    view.setInt16(i * 8 + 4, POLLIN, true);
  });
  return {
    bytes,
    count: BigInt(fds.length),
    readable: (i) => (view.getInt16(i * 8 + 6, true) & POLLIN) !== 0,
  };
}

/**
 * struct sockaddr_ll for a packet socket: family u16, protocol be16, ifindex i32, hatype u16,
 * pkttype u8, halen u8, addr[8] (the last four left zero: bind and sendto ignore them).
 */
export function sockaddrLl(interfaceIndex: number, protocol: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(20);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, AF_PACKET, true);
  view.setUint16(2, protocol, false);
  view.setInt32(4, interfaceIndex, true);
  return bytes;
}

/** The ingress interface index in a sockaddr_ll filled in by recvfrom(). */
export function sockaddrLlInterface(sockaddr: Uint8Array): number {
  return new DataView(sockaddr.buffer, sockaddr.byteOffset, sockaddr.byteLength).getInt32(4, true);
}

/** The packet type (PACKET_OUTGOING, …) in a sockaddr_ll filled in by recvfrom(). */
export function sockaddrLlPacketType(sockaddr: Uint8Array): number {
  return sockaddr[10];
}

const fromLength = new Uint32Array(1);
const fromLengthBytes = new Uint8Array(fromLength.buffer);

/**
 * One queued packet from socket `fd` without waiting (recvfrom, MSG_DONTWAIT): its bytes into
 * `buffer`, its sender's address (a sockaddr_ll on a packet socket) into `from`. Returns its
 * length, or -1 with errno telling why (EAGAIN: nothing queued).
 */
export function receiveFrom(fd: number, buffer: Uint8Array, from: Uint8Array): number {
  fromLength[0] = from.length;
  return Number(
    libc().recvfrom(fd, buffer, BigInt(buffer.length), MSG_DONTWAIT, from, fromLengthBytes),
  );
}

/** The name of the interface with index `index`, or undefined when there is none. */
export function interfaceName(index: number): string | undefined {
  const buffer = new Uint8Array(16);
  if (libc().if_indextoname(index, buffer) === null) return undefined;
  const end = buffer.indexOf(0);
  return new TextDecoder().decode(buffer.subarray(0, end < 0 ? buffer.length : end));
}

// Constants from <sys/socket.h>, <linux/if_packet.h>, <poll.h>, <sys/eventfd.h>, <errno.h>.
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_ATTACH_FILTER = 26;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
/** sockaddr_ll.sll_pkttype of a frame this host sent. */
export const PACKET_OUTGOING = 4;
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EAGAIN = 11;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const ENETDOWN = 100;
export const ENXIO = 6;
