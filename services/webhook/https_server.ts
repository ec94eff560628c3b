/**
 * The HTTPS listener. It is node:https (which Deno implements) rather than
 * Deno.serve because its SNICallback lets every handshake pick the current
 * certificate: a renewed certificate is served from the next connection on,
 * with no restart and no listener swap, so no request is dropped.
 */

import { Buffer } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { SecureContext } from "node:tls";
import { errorResponse } from "../shared/http_errors.ts";
import type { Logger } from "../shared/log.ts";
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

async function answer(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  handler: Handler,
  log: Logger,
): Promise<void> {
  let status: number;
  let headers: Record<string, string>;
  let body: string;
  try {
    ({ status, headers, body } = await handler(appRequest(incoming)));
  } catch (error) {
    log.error("request failed", { error });
    const response = errorResponse(
      500,
      "internal_error",
      `the webhook failed: ${(error as Error).message}`,
    );
    ({ status, body } = { status: response.status, body: await response.text() });
    headers = { "content-type": "application/json" };
  }
  // A body not read to the end (too large) would poison a kept-alive connection.
  const unread = incoming.method !== "GET" && incoming.method !== "HEAD" && !incoming.complete;
  // Encoded once: the length comes from the bytes that are sent.
  const payload = Buffer.from(body);
  const head: Record<string, string> = { ...headers, "content-length": String(payload.byteLength) };
  if (unread) {
    head.connection = "close";
    outgoing.writeHead(status, head);
    outgoing.end(payload, () => incoming.socket?.destroy());
  } else {
    outgoing.writeHead(status, head);
    outgoing.end(payload);
  }
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
    (incoming, outgoing) => void answer(incoming, outgoing, options.handler, log),
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
