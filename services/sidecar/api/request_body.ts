/**
 * Reading a POST body with a size limit: a declared Content-Length over the
 * limit is refused before anything is read; a chunked body is read until it
 * passes the limit. Either way the answer is 413 with the usual JSON error
 * and the connection closes, since the rest of the body is never read. A body
 * that breaks its chunked framing is a 400 `bad_request`, and closes it too.
 */

import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import { MalformedBody } from "../http/body_stream.ts";
import type { PostRoute } from "./routes.ts";

export async function receivePost(
  stream: ReadableStream<Uint8Array> | null,
  /** The request's Content-Length field, if it has one. */
  declared: string | undefined,
  path: string,
  route: PostRoute,
): Promise<PlainResponse> {
  const tooLarge = () =>
    errorAnswer(
      413,
      "body_too_large",
      `a POST to ${path} carries at most ${route.maxBytes} bytes`,
      { headers: { connection: "close" } },
    );
  if (declared !== undefined && !(Number(declared) <= route.maxBytes)) return tooLarge();
  const body = new Uint8Array(route.maxBytes);
  let length = 0;
  if (stream !== null) {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (length + value.length > route.maxBytes) return tooLarge();
        body.set(value, length);
        length += value.length;
      }
    } catch (error) {
      if (!(error instanceof MalformedBody)) throw error;
      return errorAnswer(400, "bad_request", `the request body is malformed: ${error.message}`, {
        headers: { connection: "close" },
      });
    } finally {
      reader.releaseLock();
    }
  }
  return route.accept(body.subarray(0, length));
}
