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

/**
 * The response's bytes, and whether the connection ends after it: when
 * `framing.close` says so, or when the handler's own Connection header has
 * the `close` token (found in the same pass over the headers).
 */
export function framedResponse(
  response: PlainResponse,
  framing: ResponseFraming,
): { bytes: Uint8Array; close: boolean } {
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
  if (framing.date !== false) head += `date: ${httpDate(framing.now ?? Date.now())}\r\n`;
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
