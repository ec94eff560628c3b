/**
 * A response's plain values as the bytes of one HTTP/1.1 response: status
 * line, the handler's headers (in name order, as a Headers object lists them),
 * Content-Length, Date and, when the connection ends after it,
 * `Connection: close`. Written with a single write.
 */

import type { PlainResponse } from "../../shared/http_errors.ts";
import { isoTime } from "../../shared/log.ts";

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** Headers the server writes itself; a handler's own values for them are dropped. */
const FRAMING = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "date",
  "keep-alive",
]);

const encoder = new TextEncoder();

export interface ResponseFraming {
  /** A HEAD request: Content-Length as for GET, no body. */
  head: boolean;
  /** The connection is closed after this response. */
  close: boolean;
  /** Leave out the Date header (for responses made once and sent many times). */
  date?: boolean;
  now?: number;
}

export function responseBytes(response: PlainResponse, framing: ResponseFraming): Uint8Array {
  return framedResponse(response, framing).bytes;
}

/** A response's framing: its bytes, and whether the connection ends after it. */
export interface Framed {
  readonly bytes: Uint8Array;
  readonly close: boolean;
}

/**
 * The response's bytes, and whether the connection ends after it: when
 * `framing.close` says so, or when the handler's own Connection header has
 * the `close` token (found in the same pass over the headers).
 *
 * A handler answers most requests with a response it made once (an identity
 * document, a health check): such a response, answered again within the same
 * second (its Date) and framed alike, is sent as the bytes made the first time.
 * The returned value is shared, so it is never to be changed.
 */
export function framedResponse(response: PlainResponse, framing: ResponseFraming): Framed {
  const withDate = framing.date !== false;
  const second = withDate ? Math.floor((framing.now ?? Date.now()) / 1000) : -1;
  for (const entry of recent) {
    if (
      entry.response === response && entry.second === second && entry.head === framing.head &&
      entry.close === framing.close && entry.status === response.status &&
      entry.headers === response.headers && entry.body === response.body
    ) {
      return entry.framed;
    }
  }
  const framed = frame(response, framing, withDate ? httpDate(second * 1000) : undefined);
  recent[next] = {
    response,
    status: response.status,
    headers: response.headers,
    body: response.body,
    second,
    head: framing.head,
    close: framing.close,
    framed,
  };
  next = (next + 1) % RECENT;
  return framed;
}

/** How many framed responses are kept for reuse: the few a server answers most. */
const RECENT = 4;
/** A framed response and what it was made from, compared by identity. */
interface RecentEntry {
  response: PlainResponse;
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
  second: number;
  head: boolean;
  close: boolean;
  framed: Framed;
}
const recent: RecentEntry[] = [];
let next = 0;

function frame(
  response: PlainResponse,
  framing: ResponseFraming,
  date: string | undefined,
): Framed {
  const body = typeof response.body === "string" ? encoder.encode(response.body) : response.body;
  let close = framing.close;
  let head = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? ""}\r\n`;
  const { headers } = response;
  const names = Object.keys(headers);
  if (names.length > 1) names.sort();
  for (const name of names) {
    if (!FRAMING.has(name)) head += `${name}: ${headers[name]}\r\n`;
    else if (name === "connection" && !close) close = hasCloseToken(headers[name]);
  }
  head += `content-length: ${body.length}\r\n`;
  if (date !== undefined) head += `date: ${date}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  if (framing.head || body.length === 0) return { bytes: encoder.encode(head), close };
  // One buffer for head and body: the head is at most a few hundred bytes.
  const bytes = new Uint8Array(head.length * 3 + body.length);
  const { written } = encoder.encodeInto(head, bytes);
  bytes.set(body, written);
  return { bytes: bytes.subarray(0, written + body.length), close };
}

/** True when a Connection header value lists the `close` token. */
export function hasCloseToken(value: string | undefined): boolean {
  if (value === undefined) return false;
  const lower = value.toLowerCase();
  if (lower === "close") return true;
  return lower.split(",").some((token) => token.trim() === "close");
}

const DAYS = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
let cachedSecond = -1;
let cachedDate = "";

/**
 * The IMF-fixdate of `ms` ("Tue, 01 Dec 2026 03:58:25 GMT"), made once per
 * second and without a Date object (see isoTime).
 */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const iso = isoTime(second * 1000); // 2026-12-01T03:58:25.000Z
    const day = DAYS[Math.floor(second / 86_400) % 7];
    const month = MONTHS[Number(iso.slice(5, 7)) - 1];
    cachedDate = `${day}, ${iso.slice(8, 10)} ${month} ${iso.slice(0, 4)} ${iso.slice(11, 19)} GMT`;
    cachedSecond = second;
  }
  return cachedDate;
}
