/**
 * The bytes a connection has delivered and nobody has consumed yet: request
 * heads, then bodies, then the next pipelined request, in one buffer that
 * grows only as far as a caller allows.
 */

export interface ConnectionReader {
  /** The unconsumed bytes (a view, valid until the next fill or consume). */
  bytes(): Uint8Array;
  /** How many bytes are unconsumed. */
  held(): number;
  /**
   * Reads once more from the connection, keeping at most `limit` unconsumed
   * bytes; false when the client has closed its side.
   */
  fill(limit: number): Promise<boolean>;
  consume(count: number): void;
}

const INITIAL_BYTES = 2048;

export function connectionReader(conn: Deno.Conn): ConnectionReader {
  let buffer = new Uint8Array(INITIAL_BYTES);
  let start = 0;
  let end = 0;
  return {
    bytes: () => buffer.subarray(start, end),
    held: () => end - start,
    async fill(limit) {
      const held = end - start;
      if (held >= limit) throw new RangeError(`already holding ${held} of ${limit} bytes`);
      if (end === buffer.length) {
        if (start > 0) {
          buffer.copyWithin(0, start, end);
        } else {
          const grown = new Uint8Array(Math.min(Math.max(buffer.length * 4, INITIAL_BYTES), limit));
          grown.set(buffer.subarray(0, end));
          buffer = grown;
        }
        start = 0;
        end = held;
      }
      const n = await conn.read(buffer.subarray(end, Math.min(buffer.length, start + limit)));
      if (n === null) return false;
      end += n;
      return true;
    },
    consume(count) {
      start += count;
      if (start === end) {
        start = end = 0;
        // Back to a small buffer once a large head or body has gone through.
        if (buffer.length > INITIAL_BYTES) buffer = new Uint8Array(INITIAL_BYTES);
      }
    },
  };
}
