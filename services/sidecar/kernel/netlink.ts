/**
 * Netlink sockets and message framing, for any netlink family (NETLINK_ROUTE
 * for links/addresses/routes, NETLINK_NETFILTER for nftables batches).
 *
 * API
 * - Attributes (TLV, 4-byte aligned; nested attributes are attributes whose
 *   value is more attributes):
 *   `attr(type, value)`, `attrU8/U16/U32/U32be/U16be/Str/Empty(type, …)`,
 *   `nested(type, children, {flag})` (sets NLA_F_NESTED when `flag` is true, as
 *   nftables expects), `parseAttrs(bytes)` → `Attr[]`, `attrTable(bytes)` →
 *   `Map<type, Uint8Array>` (first occurrence wins), readers `u8/u16/u32/
 *   u32be/str(bytes)`, `concat(...parts)`.
 * - Messages: `encodeMessage({type, flags, seq, pid?, payload})` → bytes with
 *   an nlmsghdr; `parseMessages(bytes)` → `NetlinkMessage[]`;
 *   `parseError(message)` → `{errno, extackMessage?}` for NLMSG_ERROR.
 * - Sockets: `openNetlink(protocol, {groups?})` → `NetlinkSocket` (plain object
 *   with the fd, port id and a sequence counter); `closeNetlink(sock)`.
 *   - `request(sock, {type, flags?, payload}, what)`: sends one request with
 *     NLM_F_REQUEST|NLM_F_ACK and waits for its ACK; a NLMSG_ERROR becomes a
 *     SyscallError (libc.ts: `isSyscallError(e, EEXIST)` works) whose message
 *     starts with `what` and includes the kernel's extended-ack text.
 *   - `dump(sock, {type, flags?, payload}, what, {onRetried?})`: NLM_F_DUMP
 *     request, returns every reply message of a (multipart) dump up to
 *     NLMSG_DONE; a dump the kernel marks NLM_F_DUMP_INTR is read again (up to
 *     10 attempts, then an error), and `onRetried` is told it happened.
 *   - `transact(sock, messages, what)`: sends several messages in ONE send (an
 *     nftables batch: BATCH_BEGIN, …, BATCH_END) with consecutive sequence
 *     numbers, waits for the ACK of every message carrying NLM_F_ACK, and
 *     throws the first error. Returns the reply messages that were not ACKs.
 *   - `receiveEvents(sock)`: reads whatever multicast messages are queued
 *     (MSG_DONTWAIT); wait for readability with libc `pollAsync` first.
 * All calls are synchronous: the kernel answers netlink requests while
 * handling the send, so replies are queued by the time `send` returns (reads
 * still poll with a timeout so a missing reply cannot hang the process).
 * Integers in netlink headers and most attributes are in host byte order,
 * little-endian on every platform this runs on (x86-64, arm64).
 */

import {
  AF_NETLINK,
  check,
  EAGAIN,
  EINTR,
  ENOBUFS,
  errno,
  libc,
  MSG_DONTWAIT,
  pollForInput,
  SO_RCVBUF,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_SOCKET,
  type SyscallError,
  syscallError,
} from "./libc.ts";

export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** On NLMSG_ERROR: the echoed request was cut to its header. */
export const NLM_F_CAPPED = 0x100;
/** On NLMSG_ERROR: extended-ack attributes follow. */
export const NLM_F_ACK_TLVS = 0x200;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_HDRLEN = 16;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
const NLMSGERR_ATTR_MSG = 1;

const LE = true;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rounds up to the 4-byte netlink alignment. */
export function align4(length: number): number {
  return (length + 3) & ~3;
}

export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---- attributes ---------------------------------------------------------------------------

export interface Attr {
  /** The type without the NESTED/NET_BYTEORDER flag bits. */
  type: number;
  /** The raw type field, flags included. */
  rawType: number;
  value: Uint8Array;
}

/** One attribute: 2-byte length, 2-byte type, value, padding to 4 bytes. */
export function attr(type: number, value: Uint8Array): Uint8Array<ArrayBuffer> {
  const length = 4 + value.length;
  const out = new Uint8Array(align4(length));
  const view = new DataView(out.buffer);
  view.setUint16(0, length, LE);
  view.setUint16(2, type, LE);
  out.set(value, 4);
  return out;
}

export function attrU8(type: number, value: number): Uint8Array<ArrayBuffer> {
  return attr(type, Uint8Array.of(value));
}

export function attrU16(type: number, value: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(2);
  new DataView(bytes.buffer).setUint16(0, value, LE);
  return attr(type, bytes);
}

export function attrU16be(type: number, value: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(2);
  new DataView(bytes.buffer).setUint16(0, value, false);
  return attr(type, bytes);
}

export function attrU32(type: number, value: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, LE);
  return attr(type, bytes);
}

export function attrU32be(type: number, value: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, false);
  return attr(type, bytes);
}

/** A NUL-terminated string attribute (what the kernel expects for names). */
export function attrStr(type: number, value: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(value);
  const withNul = new Uint8Array(bytes.length + 1);
  withNul.set(bytes);
  return attr(type, withNul);
}

/** A flag attribute with no value. */
export function attrEmpty(type: number): Uint8Array<ArrayBuffer> {
  return attr(type, new Uint8Array(0));
}

/** An attribute holding other attributes; `flag` sets NLA_F_NESTED in its type. */
export function nested(
  type: number,
  children: Uint8Array[],
  options: { flag?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  return attr(options.flag ? type | NLA_F_NESTED : type, concat(...children));
}

/** Splits a run of attributes; stops at a truncated one. */
export function parseAttrs(bytes: Uint8Array): Attr[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const attrs: Attr[] = [];
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = view.getUint16(offset, LE);
    const rawType = view.getUint16(offset + 2, LE);
    if (length < 4 || offset + length > bytes.length) break;
    attrs.push({
      type: rawType & NLA_TYPE_MASK,
      rawType,
      value: bytes.subarray(offset + 4, offset + length),
    });
    offset += align4(length);
  }
  return attrs;
}

/** Attributes by type; the first occurrence of a type wins. */
export function attrTable(bytes: Uint8Array): Map<number, Uint8Array> {
  const table = new Map<number, Uint8Array>();
  for (const { type, value } of parseAttrs(bytes)) {
    if (!table.has(type)) table.set(type, value);
  }
  return table;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function u8(bytes: Uint8Array): number {
  return bytes[0];
}
export function u16(bytes: Uint8Array): number {
  return viewOf(bytes).getUint16(0, LE);
}
export function u32(bytes: Uint8Array): number {
  return viewOf(bytes).getUint32(0, LE);
}
export function i32(bytes: Uint8Array): number {
  return viewOf(bytes).getInt32(0, LE);
}
export function u32be(bytes: Uint8Array): number {
  return viewOf(bytes).getUint32(0, false);
}
/** A string attribute, without its trailing NUL. */
export function str(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

// ---- messages -----------------------------------------------------------------------------

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header (family header + attributes). */
  payload: Uint8Array;
}

export interface OutgoingMessage {
  type: number;
  flags: number;
  seq: number;
  pid?: number;
  payload: Uint8Array;
}

/** nlmsghdr (len u32, type u16, flags u16, seq u32, pid u32) followed by the payload. */
export function encodeMessage(message: OutgoingMessage): Uint8Array<ArrayBuffer> {
  const length = NLMSG_HDRLEN + message.payload.length;
  const out = new Uint8Array(align4(length));
  const view = new DataView(out.buffer);
  view.setUint32(0, length, LE);
  view.setUint16(4, message.type, LE);
  view.setUint16(6, message.flags, LE);
  view.setUint32(8, message.seq >>> 0, LE);
  view.setUint32(12, (message.pid ?? 0) >>> 0, LE);
  out.set(message.payload, NLMSG_HDRLEN);
  return out;
}

/** Splits a datagram into messages; stops at a truncated one. */
export function parseMessages(bytes: Uint8Array): NetlinkMessage[] {
  const view = viewOf(bytes);
  const messages: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= bytes.length) {
    const length = view.getUint32(offset, LE);
    if (length < NLMSG_HDRLEN || offset + length > bytes.length) break;
    messages.push({
      type: view.getUint16(offset + 4, LE),
      flags: view.getUint16(offset + 6, LE),
      seq: view.getUint32(offset + 8, LE),
      pid: view.getUint32(offset + 12, LE),
      payload: bytes.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += align4(length);
  }
  return messages;
}

export interface NetlinkErrorInfo {
  /** Positive errno; 0 for an ACK. */
  errno: number;
  /** The kernel's extended-ack explanation, when it gave one. */
  extackMessage?: string;
}

/** Reads an NLMSG_ERROR payload: i32 -errno, the echoed request, then ext-ack attributes. */
export function parseError(message: NetlinkMessage): NetlinkErrorInfo {
  const code = -i32(message.payload);
  const info: NetlinkErrorInfo = { errno: code };
  if (message.flags & NLM_F_ACK_TLVS && message.payload.length >= 4 + NLMSG_HDRLEN) {
    const echoedLength = message.flags & NLM_F_CAPPED
      ? NLMSG_HDRLEN
      : u32(message.payload.subarray(4));
    const tlvs = attrTable(message.payload.subarray(4 + align4(echoedLength)));
    const text = tlvs.get(NLMSGERR_ATTR_MSG);
    if (text) info.extackMessage = str(text);
  }
  return info;
}

/** A SyscallError for a failed netlink request, e.g. `add route: File exists (errno 17)`. */
export function netlinkError(what: string, info: NetlinkErrorInfo): SyscallError {
  const error = syscallError(what, info.errno);
  if (info.extackMessage) error.message += `: ${info.extackMessage}`;
  return error;
}

// ---- sockets ------------------------------------------------------------------------------

export interface NetlinkSocket {
  fd: number;
  protocol: number;
  /** The port id the kernel gave this socket. */
  portId: number;
  /** The last sequence number used. */
  seq: number;
  /** Reusable receive buffer. */
  buffer: Uint8Array<ArrayBuffer>;
}

export interface OpenOptions {
  /** Multicast groups to join (group numbers, e.g. RTNLGRP_LINK = 1). */
  groups?: number[];
  receiveBufferBytes?: number;
}

function setIntOption(fd: number, level: number, name: number, value: number, what: string) {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, LE);
  check(`setsockopt ${what}`, libc().setsockopt(fd, level, name, bytes, 4));
}

/** sockaddr_nl: family u16, pad u16, pid u32, groups u32. */
export function sockaddrNl(pid = 0, groups = 0): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, AF_NETLINK, LE);
  view.setUint32(4, pid, LE);
  view.setUint32(8, groups, LE);
  return bytes;
}

export function openNetlink(protocol: number, options: OpenOptions = {}): NetlinkSocket {
  const fd = check(
    "socket(AF_NETLINK)",
    libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol),
  );
  try {
    const rcvbuf = options.receiveBufferBytes ?? 1 << 20;
    setIntOption(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, "SO_RCVBUF");
    setIntOption(fd, SOL_SOCKET, SO_SNDBUF, 1 << 20, "SO_SNDBUF");
    // Extended acks carry the kernel's explanation of a refused request; capped acks keep
    // error replies small. Both are best-effort (old kernels lack them).
    try {
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
    } catch { /* older kernel */ }
    const address = sockaddrNl();
    check("bind(AF_NETLINK)", libc().bind(fd, address, address.length));
    for (const group of options.groups ?? []) {
      setIntOption(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, `join group ${group}`);
    }
    const bound = new Uint8Array(12);
    const length = Uint32Array.of(12);
    check("getsockname(AF_NETLINK)", libc().getsockname(fd, bound, new Uint8Array(length.buffer)));
    return {
      fd,
      protocol,
      portId: new DataView(bound.buffer).getUint32(4, LE),
      seq: Math.floor(Math.random() * 0x7fff0000),
      buffer: new Uint8Array(Math.max(rcvbuf, 1 << 16)),
    };
  } catch (error) {
    libc().close(fd);
    throw error;
  }
}

export function closeNetlink(sock: NetlinkSocket): void {
  if (sock.fd >= 0) libc().close(sock.fd);
  sock.fd = -1;
}

function nextSeq(sock: NetlinkSocket): number {
  sock.seq = (sock.seq + 1) >>> 0 || 1;
  return sock.seq;
}

function sendAll(sock: NetlinkSocket, bytes: Uint8Array<ArrayBuffer>, what: string): void {
  const address = sockaddrNl();
  const sent = Number(
    libc().sendto(sock.fd, bytes, BigInt(bytes.length), 0, address, address.length),
  );
  if (sent < 0) throw syscallError(`${what}: sendto(netlink)`, errno());
  if (sent !== bytes.length) {
    throw new Error(`${what}: sendto(netlink) sent ${sent} of ${bytes.length} bytes`);
  }
}

/** Waits up to `timeoutMs` for the socket to be readable; false on timeout. */
function waitReadable(fd: number, timeoutMs: number): boolean {
  const pollfds = pollForInput([fd]);
  for (;;) {
    const ready = libc().poll(pollfds.bytes, pollfds.count, timeoutMs);
    if (ready >= 0) return ready > 0;
    const code = errno();
    if (code !== EINTR) throw syscallError("poll(netlink)", code);
  }
}

/** One datagram's messages, or null when none arrives within the timeout. */
function receiveOnce(
  sock: NetlinkSocket,
  what: string,
  timeoutMs: number,
): NetlinkMessage[] | null {
  if (!waitReadable(sock.fd, timeoutMs)) return null;
  const received = Number(
    libc().recv(sock.fd, sock.buffer, BigInt(sock.buffer.length), MSG_DONTWAIT),
  );
  if (received < 0) {
    const code = errno();
    if (code === EAGAIN) return [];
    throw syscallError(`${what}: recv(netlink)`, code);
  }
  // Copy: the buffer is reused by the next receive.
  return parseMessages(sock.buffer.slice(0, received));
}

const REPLY_TIMEOUT_MS = 5000;

export interface Request {
  type: number;
  /** Extra flags besides NLM_F_REQUEST (and NLM_F_ACK, which `request` always adds). */
  flags?: number;
  payload: Uint8Array;
}

/** Sends one request and waits for its ACK; throws the kernel's error. */
export function request(sock: NetlinkSocket, message: Request, what: string): NetlinkMessage[] {
  return transact(
    sock,
    [{ ...message, flags: (message.flags ?? 0) | NLM_F_REQUEST | NLM_F_ACK }],
    what,
  );
}

/** Set by the kernel on a dump's messages when the dumped state changed while it was read. */
export const NLM_F_DUMP_INTR = 0x10;
/** How often an interrupted dump is read again before giving up (as CNI's netlinksafe does). */
export const DUMP_ATTEMPTS = 10;

/** Whether any of a dump's messages (NLMSG_DONE included) carries NLM_F_DUMP_INTR. */
export function isDumpInterrupted(messages: NetlinkMessage[]): boolean {
  return messages.some((message) => (message.flags & NLM_F_DUMP_INTR) !== 0);
}

export interface DumpOptions {
  /** Attempts before an interrupted dump is an error (default DUMP_ATTEMPTS). */
  attempts?: number;
  /** Told how many interrupted dumps were thrown away when a later attempt was whole. */
  onRetried?: (interruptions: number) => void;
}

/** One dump request and its replies, whatever carries them (a socket; a fake in tests). */
export interface DumpExchange {
  /** Sends the request again with a fresh sequence number; returns that number. */
  send(): number;
  /** The next datagram's messages; null when none came in time. */
  receive(): NetlinkMessage[] | null;
  /** Replies to other requests or sockets are skipped. */
  portId: number;
}

/** One attempt: every reply of request `seq` up to NLMSG_DONE, and whether it was interrupted. */
function readDump(
  exchange: DumpExchange,
  seq: number,
  what: string,
): { replies: NetlinkMessage[]; interrupted: boolean } {
  const replies: NetlinkMessage[] = [];
  let interrupted = false;
  for (;;) {
    const batch = exchange.receive();
    if (batch === null) throw new Error(`${what}: no reply from the kernel within 5 s`);
    for (const reply of batch) {
      if (reply.seq !== seq || reply.pid !== exchange.portId) continue;
      if (reply.flags & NLM_F_DUMP_INTR) interrupted = true;
      if (reply.type === NLMSG_DONE) return { replies, interrupted };
      if (reply.type === NLMSG_ERROR) {
        const info = parseError(reply);
        if (info.errno !== 0) throw netlinkError(what, info);
        return { replies, interrupted };
      }
      replies.push(reply);
    }
  }
}

/**
 * Runs a dump until one attempt comes back whole: a dump the kernel marks NLM_F_DUMP_INTR
 * (the state changed while it was read, e.g. while KubeVirt rewires the pod) may miss or
 * repeat entries, so it is read again, up to `attempts` times in all.
 */
export function runDump(
  exchange: DumpExchange,
  what: string,
  options: DumpOptions = {},
): NetlinkMessage[] {
  const attempts = options.attempts ?? DUMP_ATTEMPTS;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const { replies, interrupted } = readDump(exchange, exchange.send(), what);
    if (!interrupted) {
      if (attempt > 1) options.onRetried?.(attempt - 1);
      return replies;
    }
  }
  throw new Error(
    `${what}: the kernel interrupted the dump ${attempts} times in a row ` +
      `(the state kept changing while it was read); giving up for now`,
  );
}

/**
 * A dump request; returns every reply message up to NLMSG_DONE, read again while the kernel
 * reports the dump as interrupted (see runDump).
 */
export function dump(
  sock: NetlinkSocket,
  message: Request,
  what: string,
  options: DumpOptions = {},
): NetlinkMessage[] {
  return runDump(
    {
      send() {
        const seq = nextSeq(sock);
        sendAll(
          sock,
          encodeMessage({
            type: message.type,
            flags: (message.flags ?? 0) | NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            payload: message.payload,
          }),
          what,
        );
        return seq;
      },
      receive: () => receiveOnce(sock, what, REPLY_TIMEOUT_MS),
      portId: sock.portId,
    },
    what,
    options,
  );
}

export interface BatchMessage {
  type: number;
  /** Full flags (include NLM_F_REQUEST; NLM_F_ACK to be told this message succeeded). */
  flags: number;
  payload: Uint8Array;
}

/**
 * Sends `messages` in one datagram with consecutive sequence numbers and waits for the ACK of
 * each one that asked for it. Throws the first error (a message without NLM_F_ACK can still
 * fail). Returns the non-ACK replies (e.g. NLM_F_ECHO copies).
 */
export function transact(
  sock: NetlinkSocket,
  messages: BatchMessage[],
  what: string,
): NetlinkMessage[] {
  const pending = new Set<number>();
  const parts = messages.map((message) => {
    const seq = nextSeq(sock);
    if (message.flags & NLM_F_ACK) pending.add(seq);
    return encodeMessage({ ...message, seq });
  });
  const first = (sock.seq - messages.length + 1) >>> 0;
  const ours = (seq: number) => ((seq - first) >>> 0) < messages.length;
  sendAll(sock, concat(...parts), what);

  const replies: NetlinkMessage[] = [];
  let failure: SyscallError | undefined;
  while (pending.size > 0) {
    // After an error, wait only briefly for the remaining ACKs (a failed batch may not send them).
    const batch = receiveOnce(sock, what, failure ? 50 : REPLY_TIMEOUT_MS);
    if (batch === null) {
      if (failure) break;
      throw new Error(`${what}: no reply from the kernel within 5 s`);
    }
    for (const reply of batch) {
      if (reply.pid !== sock.portId || !ours(reply.seq)) continue;
      if (reply.type === NLMSG_ERROR) {
        const info = parseError(reply);
        pending.delete(reply.seq);
        if (info.errno !== 0) failure ??= netlinkError(what, info);
      } else {
        replies.push(reply);
      }
    }
  }
  if (failure) throw failure;
  return replies;
}

/** Reads every queued multicast message without blocking. */
export function receiveEvents(sock: NetlinkSocket): NetlinkMessage[] {
  const events: NetlinkMessage[] = [];
  for (;;) {
    const received = Number(
      libc().recv(sock.fd, sock.buffer, BigInt(sock.buffer.length), MSG_DONTWAIT),
    );
    if (received < 0) {
      // recv on a synchronous call: errno is reliable here. ENOBUFS means events were lost;
      // callers re-read the full state when they see `lost`.
      const code = errno();
      if (code === EAGAIN) return events;
      if (code === ENOBUFS) {
        events.push({ type: EVENTS_LOST, flags: 0, seq: 0, pid: 0, payload: new Uint8Array(0) });
        continue;
      }
      throw syscallError("recv(netlink events)", code);
    }
    events.push(...parseMessages(sock.buffer.slice(0, received)));
  }
}

/** A pseudo message type `receiveEvents` returns when the kernel dropped events (ENOBUFS). */
export const EVENTS_LOST = -1;
