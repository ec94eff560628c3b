/**
 * A request body as a ReadableStream that reads from the connection only when
 * the handler pulls: nothing is read behind the handler's back, so a body the
 * handler does not want stays unread and the connection is closed after the
 * response. Content-Length and chunked bodies (RFC 9112 §7.1) are decoded.
 */

import type { ConnectionReader } from "./connection_reader.ts";
import type { BodyFraming } from "./request_head.ts";

/** A chunk-size line or the trailer section longer than this is refused. */
const MAX_LINE_BYTES = 1024;
const MAX_TRAILER_BYTES = 8192;
/** Most bytes held unconsumed while a body is read. */
const READ_WINDOW = 65_536;

/**
 * A body that breaks its framing (a chunk size that is not hexadecimal, a chunk longer than its
 * size, an overlong chunk line or trailer) or ends early: the client's fault, answered with 400.
 */
export class MalformedBody extends Error {
  override name = "MalformedBody";
}

export interface RequestBody {
  stream: ReadableStream<Uint8Array>;
  /** True once the body has been read to its end (the connection may serve another request). */
  complete(): boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const latin1 = new TextDecoder("latin1");

export function requestBody(
  reader: ConnectionReader,
  framing: Exclude<BodyFraming, { kind: "none" }>,
  onFirstRead: () => void | Promise<void>,
): RequestBody {
  let complete = false;
  let started = false;
  /** Bytes left of the Content-Length body or of the current chunk. */
  let remaining = framing.kind === "length" ? framing.length : 0;
  let state: "size" | "data" | "data end" | "trailers" = framing.kind === "length"
    ? "data"
    : "size";
  let trailerBytes = 0;

  const more = async (): Promise<void> => {
    if (!(await reader.fill(READ_WINDOW))) {
      throw new MalformedBody("the client closed the connection before the body ended");
    }
  };
  /** The next line (without its end), consuming it; waits for more bytes as needed. */
  const line = async (limit: number): Promise<string> => {
    while (true) {
      const bytes = reader.bytes();
      const lf = bytes.subarray(0, limit + 2).indexOf(LF);
      if (lf >= 0) {
        const text = latin1.decode(
          bytes.subarray(0, lf > 0 && bytes[lf - 1] === CR ? lf - 1 : lf),
        );
        reader.consume(lf + 1);
        return text;
      }
      if (bytes.length >= limit + 2) throw new MalformedBody("a chunk line is too long");
      await more();
    }
  };

  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        await onFirstRead();
      }
      while (true) {
        if (state === "data") {
          if (remaining === 0) {
            if (framing.kind === "length") {
              complete = true;
              controller.close();
              return;
            }
            state = "data end";
            continue;
          }
          if (reader.bytes().length === 0) await more();
          const bytes = reader.bytes();
          const take = Math.min(remaining, bytes.length);
          controller.enqueue(bytes.slice(0, take));
          reader.consume(take);
          remaining -= take;
          return;
        }
        if (state === "data end") {
          if ((await line(0)) !== "") throw new MalformedBody("a chunk is longer than its size");
          state = "size";
          continue;
        }
        if (state === "size") {
          const size = (await line(MAX_LINE_BYTES)).split(";")[0].trim();
          if (!/^[0-9A-Fa-f]{1,12}$/.test(size)) {
            throw new MalformedBody("a chunk size is not hexadecimal");
          }
          remaining = parseInt(size, 16);
          state = remaining === 0 ? "trailers" : "data";
          continue;
        }
        // Trailer fields are read and ignored, up to the blank line that ends the body.
        const trailer = await line(MAX_LINE_BYTES);
        trailerBytes += trailer.length + 2;
        if (trailerBytes > MAX_TRAILER_BYTES) {
          throw new MalformedBody("the trailer section is too long");
        }
        if (trailer === "") {
          complete = true;
          controller.close();
          return;
        }
      }
    },
  });
  return { stream, complete: () => complete };
}
