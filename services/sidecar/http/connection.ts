/**
 * One client connection: read request heads, hand each request to the
 * handler in order (pipelined requests included), write its response, and
 * keep the connection for the next request unless the exchange ends it.
 *
 * The request's path is the request target's, never the Host header's. A
 * body is read only as the handler pulls it (body_stream.ts); one left
 * unread, a malformed head, HTTP/1.0 or `Connection: close` on either side
 * ends the connection after the response. Such a connection is closed
 * unread: the response goes out, the write side is shut, and what the client
 * still sends is discarded for at most LINGER_BYTES (so its kernel keeps the
 * response rather than a reset) before the socket is closed.
 */

import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import { requestBody } from "./body_stream.ts";
import type { ConnectionSlot } from "./connection_limits.ts";
import { type ConnectionReader, connectionReader } from "./connection_reader.ts";
import {
  findHeadEnd,
  type HeadResult,
  leadingEmptyLines,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type ProtocolError,
  tooLarge,
  wholeCommonHead,
} from "./request_head.ts";
import { framedResponse, hasCloseToken, responseBytes } from "./response_bytes.ts";

/** What a handler learns about the connection a request came on. */
export interface ConnectionInfo {
  remoteAddr: Deno.NetAddr;
}

/**
 * A request as parsed from its head: plain values, no Request or Headers
 * object (building those costs more than the rest of an answer).
 */
export interface HttpRequest {
  /** Upper-case letters only. */
  method: string;
  /** The path of the request target ("/v1/token"), never taken from Host. */
  path: string;
  /** The query string, without the "?"; empty when there is none. */
  query: string;
  /** Header fields by lower-case name, as sent; repeated fields joined with ", ". */
  fields: ReadonlyMap<string, string>;
  /** The body, read from the connection only as it is pulled; null for GET, HEAD and no body. */
  body: ReadableStream<Uint8Array> | null;
  /** performance.now() when the head was complete (a clock reading costs; one serves all). */
  receivedAt: number;
}

export type RequestHandler = (
  request: HttpRequest,
  info: ConnectionInfo,
) => PlainResponse | Promise<PlainResponse>;

export interface ConnectionContext {
  handler: RequestHandler;
  /** The answer when the handler throws. */
  onError(error: unknown): PlainResponse;
  /** Requests the handler never sees (malformed heads) are logged here. */
  log: Logger;
  /** True once the server is stopping: no further request is read. */
  stopping(): boolean;
}

/** Bytes discarded from a client before a connection that ends is closed. */
export const LINGER_BYTES = 65_536;

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

export async function serveConnection(
  conn: Deno.Conn,
  slot: ConnectionSlot,
  context: ConnectionContext,
): Promise<void> {
  const reader = connectionReader(conn);
  const info: ConnectionInfo = { remoteAddr: conn.remoteAddr as Deno.NetAddr };
  let first = true;
  /** When the last response went out, if it took one write; else a next request's wait reads the clock. */
  let respondedAt: number | undefined;
  try {
    while (!context.stopping()) {
      slot.awaitRequest(first, respondedAt);
      first = false;
      // Awaits only when the buffer holds no complete head (each await costs a turn).
      let parsed = reader.held() === 0 ? NOTHING_SCANNED : headInBuffer(reader, 0);
      while ("scanned" in parsed) {
        // One byte beyond the limit, so an oversized head is recognised as such.
        if (!(await reader.fill(MAX_HEAD_BYTES + 1))) return; // the client closed between requests
        parsed = headInBuffer(reader, parsed.scanned);
      }
      const { result, length } = parsed;
      const receivedAt = performance.now();
      slot.handling();
      if ("protocolError" in result) {
        await respondAndClose(
          conn,
          slot,
          protocolErrorResponse(result.protocolError, info, context),
        );
        return;
      }
      const { head } = result;
      reader.consume(length);
      const body = head.body.kind === "none" ? undefined : requestBody(reader, head.body, () => {
        slot.readingBody();
        if (head.headers.get("expect")?.toLowerCase() === "100-continue") {
          return writeAll(conn, CONTINUE);
        }
      });
      let response: PlainResponse;
      try {
        const answer = context.handler({
          method: head.method,
          path: head.path,
          query: head.query,
          fields: head.headers,
          // A GET or HEAD body cannot be handed over; the handler sees its framing headers and refuses it.
          body: body !== undefined && head.method !== "GET" && head.method !== "HEAD"
            ? body.stream
            : null,
          receivedAt,
        }, info);
        response = answer instanceof Promise ? await answer : answer;
      } catch (error) {
        response = context.onError(error);
      }
      const { bytes, close } = framedResponse(response, {
        head: head.method === "HEAD",
        close: context.stopping() || (body !== undefined && !body.complete()) ||
          head.version === "HTTP/1.0" || hasCloseToken(head.headers.get("connection")),
      });
      if (close) {
        await respondAndClose(conn, slot, bytes);
        return;
      }
      const writeStarted = slot.writing();
      // Most writes take the whole response at once: no writeAll frame for those, and
      // the response went out when the write began.
      const written = await conn.write(bytes);
      respondedAt = writeStarted;
      if (written < bytes.length) {
        await writeAll(conn, bytes.subarray(written));
        respondedAt = undefined;
      }
    }
  } catch {
    // Reset by the client, or closed by a sweep or a stop: nothing left to answer.
  } finally {
    try {
      conn.close();
    } catch { /* closed by a sweep or a stop */ }
    slot.release();
  }
}

const NOTHING_SCANNED = Object.freeze({ scanned: 0 });

/**
 * The request head at the start of the buffer (or why it is refused) and its
 * length; else how far the buffer has been searched, to go on from there once
 * more has arrived. Empty lines before a request line are dropped.
 */
function headInBuffer(
  reader: ConnectionReader,
  scanned: number,
): { result: HeadResult; length: number } | { scanned: number } {
  let bytes = reader.bytes();
  const skip = leadingEmptyLines(bytes, bytes.length);
  if (skip > 0) {
    reader.consume(skip);
    bytes = reader.bytes();
    scanned = 0;
  }
  const whole = wholeCommonHead(bytes);
  if (whole !== undefined) return { result: whole, length: bytes.length };
  const end = findHeadEnd(bytes, 0, scanned);
  if (end >= 0) return { result: parseRequestHead(bytes.subarray(0, end)), length: end };
  if (bytes.length > MAX_HEAD_BYTES) return { result: { protocolError: tooLarge() }, length: 0 };
  return { scanned: bytes.length };
}

function protocolErrorResponse(
  error: ProtocolError,
  info: ConnectionInfo,
  context: ConnectionContext,
): PlainResponse {
  context.log.info("request", {
    method: error.method,
    path: error.path,
    status: error.status,
    client: info.remoteAddr.hostname,
    error: error.error,
  });
  return errorAnswer(error.status, error.error, error.message);
}

async function respondAndClose(
  conn: Deno.Conn,
  slot: ConnectionSlot,
  response: PlainResponse | Uint8Array,
): Promise<void> {
  const bytes = response instanceof Uint8Array
    ? response
    : responseBytes(response, { head: false, close: true });
  slot.writing();
  await writeAll(conn, bytes);
  slot.closing();
  await conn.closeWrite();
  const sink = new Uint8Array(16_384);
  let drained = 0;
  while (drained < LINGER_BYTES) {
    const n = await conn.read(sink);
    if (n === null) return;
    drained += n;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
