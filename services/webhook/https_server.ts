/**
 * The HTTPS listener. It is node:https (which Deno implements) rather than
 * Deno.serve because its SNICallback lets every handshake pick the current
 * certificate: a renewed certificate is served from the next connection on,
 * with no restart and no listener swap, so no request is dropped. A swap
 * would drop some: connections queued at a closing SO_REUSEPORT listener are
 * reset, and the API server retries no POST on a new connection. Deno.serve
 * is no faster where it counts either: the API server speaks only HTTP/1.1 to
 * webhooks, and over TLS and HTTP/1.1 Deno.serve answered a Go client's
 * back-to-back reviews on a kept-alive connection about 44 ms late
 * (bench/webhook_admission.ts).
 */

import { Buffer } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { SecureContext } from "node:tls";
import { errorAnswer, type PlainResponse } from "../shared/http_errors.ts";
import type { Logger } from "../shared/log.ts";
import type { ReviewGate } from "./review_gate.ts";
import { type AppRequest, type Handler, TOO_LARGE } from "./routes.ts";

export interface HttpsServer {
  addr: Deno.NetAddr;
  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes. */
  shutdown(graceMs?: number): Promise<void>;
}

export interface HttpsServerOptions {
  hostname: string;
  port: number;
  /** The certificate for a new handshake. */
  certificate: () => SecureContext;
  handler: Handler;
  log: Logger;
  /**
   * Bounds the reviews in progress (requests with a body); GET requests
   * (probes, metrics) never wait for it.
   */
  gate?: { reviews: ReviewGate; maxRequestBytes: number };
}

function appRequest(incoming: IncomingMessage): AppRequest {
  const url = incoming.url ?? "/";
  const query = url.indexOf("?");
  return {
    method: incoming.method ?? "GET",
    path: query === -1 ? url : url.slice(0, query),
    readBody(limit) {
      const declared = Number(incoming.headers["content-length"] ?? NaN);
      if (declared > limit) return Promise.resolve(TOO_LARGE);
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let settled = false;
        incoming.on("data", (chunk: Buffer) => {
          if (settled) return;
          size += chunk.byteLength;
          if (size > limit) {
            settled = true;
            resolve(TOO_LARGE);
            return;
          }
          chunks.push(chunk);
        });
        incoming.on("end", () => {
          if (settled) return;
          settled = true;
          resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
        });
        incoming.on("error", (error) => {
          if (settled) return;
          settled = true;
          reject(error);
        });
      });
    },
  };
}

/** Resolves when the client's connection closes. */
function closed(incoming: IncomingMessage): { promise: Promise<void>; dispose(): void } {
  const socket = incoming.socket;
  let listener = () => {};
  const promise = new Promise<void>((resolve) => {
    listener = () => resolve();
    if (!socket || socket.destroyed) resolve();
    else socket.once("close", listener);
  });
  return { promise, dispose: () => socket?.off("close", listener) };
}

/** Waits for room in the gate; undefined when the request was answered or dropped instead. */
async function admit(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  gate: NonNullable<HttpsServerOptions["gate"]>,
  log: Logger,
): Promise<(() => void) | "bypass" | undefined> {
  if (incoming.method === "GET" || incoming.method === "HEAD") return "bypass";
  const declared = Number(incoming.headers["content-length"] ?? NaN);
  // Too large: answered 413 without reading, so it needs no room.
  if (declared > gate.maxRequestBytes) return "bypass";
  const size = Number.isFinite(declared) ? declared : gate.maxRequestBytes;
  const room = gate.reviews.tryEnter(size);
  if (room !== undefined) return room;
  const close = closed(incoming);
  const admission = await gate.reviews.enter(size, close.promise);
  close.dispose();
  if (admission.admitted) return admission.release;
  if (admission.reason === "abandoned") {
    incoming.socket?.destroy();
    return undefined;
  }
  const load = gate.reviews.load();
  log.warn("refused a review: too many are waiting for memory", {
    path: incoming.url,
    requestBytes: Number.isFinite(declared) ? declared : undefined,
    inProgress: load.inProgress,
    bytesInProgress: load.bytes,
    waiting: load.waiting,
  });
  const refusal = errorAnswer(
    503,
    "overloaded",
    `the webhook is busy: ${load.inProgress} reviews in progress and ${load.waiting} waiting ` +
      "for memory; the API server applies the webhook's failurePolicy",
    { headers: { "retry-after": "1" } },
  );
  send(incoming, outgoing, refusal, true);
  return undefined;
}

/**
 * Writes `answer` with its length from the bytes sent; `close` ends the connection after it
 * (a body left unread would poison a kept-alive connection).
 */
function send(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  answer: PlainResponse,
  close: boolean,
): void {
  const payload = Buffer.from(answer.body);
  const head: Record<string, string> = {
    ...answer.headers,
    "content-length": String(payload.byteLength),
  };
  if (close) {
    head.connection = "close";
    outgoing.writeHead(answer.status, head);
    outgoing.end(payload, () => incoming.socket?.destroy());
  } else {
    outgoing.writeHead(answer.status, head);
    outgoing.end(payload);
  }
}

async function answer(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  handler: Handler,
  log: Logger,
  gate: HttpsServerOptions["gate"],
): Promise<void> {
  let release: (() => void) | "bypass" | undefined = "bypass";
  if (gate) {
    release = await admit(incoming, outgoing, gate, log);
    if (release === undefined) return;
  }
  try {
    await respond(incoming, outgoing, handler, log);
  } finally {
    if (release !== "bypass") release();
  }
}

async function respond(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  handler: Handler,
  log: Logger,
): Promise<void> {
  let answer: PlainResponse;
  try {
    answer = await handler(appRequest(incoming));
  } catch (error) {
    log.error("request failed", { error });
    answer = errorAnswer(500, "internal_error", `the webhook failed: ${(error as Error).message}`);
  }
  // A body not read to the end (too large) is not left on a kept-alive connection.
  const unread = incoming.method !== "GET" && incoming.method !== "HEAD" && !incoming.complete;
  send(incoming, outgoing, answer, unread);
}

export function startHttpsServer(options: HttpsServerOptions): Promise<HttpsServer> {
  const { log } = options;
  const server: Server = createServer(
    {
      SNICallback: (_serverName, callback) => {
        try {
          callback(null, options.certificate());
        } catch (error) {
          callback(error as Error);
        }
      },
    },
    (incoming, outgoing) => void answer(incoming, outgoing, options.handler, log, options.gate),
  );
  server.on("tlsClientError", (error: Error) => {
    log.debug("TLS handshake failed", { error });
  });
  // Longer than the API server's idle-connection timeout (90 s): if the server
  // closed an idle connection first, a review sent on it at that moment would
  // fail, and with failurePolicy Ignore a pod would start without the sidecar.
  server.keepAliveTimeout = 120_000;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      server.on("error", (error: Error) => log.error("server error", { error }));
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("the server has no TCP address"));
        return;
      }
      resolve({
        addr: { transport: "tcp", hostname: address.address, port: address.port },
        shutdown(graceMs = 10_000) {
          return new Promise<void>((done) => {
            const timer = setTimeout(() => {
              server.closeAllConnections();
              done();
            }, graceMs);
            server.close(() => {
              clearTimeout(timer);
              done();
            });
            server.closeIdleConnections();
          });
        },
      });
    });
  });
}
