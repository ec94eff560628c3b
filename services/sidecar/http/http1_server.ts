/**
 * The HTTP/1.1 server under the metadata API, in place of Deno.serve: Deno.serve
 * routes on a URL built from the Host header, reads request bodies in the
 * background whatever the handler answers, has no timeouts or connection caps,
 * and ends its server when accept(2) fails (EMFILE). Here the accept loop is
 * ours: connections are admitted against the caps of connection_limits.ts, a
 * failing accept is retried (logged once per episode) instead of ending the
 * server, and each connection is served by connection.ts.
 */

import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import { sleep } from "../../shared/sleep.ts";
import {
  type ConnectionInfo,
  type HttpRequest,
  type RequestHandler,
  serveConnection,
} from "./connection.ts";
import {
  connectionCap,
  type ConnectionLimits,
  createConnectionTable,
  openFileLimit,
  type ShedReason,
} from "./connection_limits.ts";
import { responseBytes } from "./response_bytes.ts";

export type { ConnectionInfo, HttpRequest, RequestHandler };

export interface Http1ServerOptions {
  hostname: string;
  port: number;
  limits: ConnectionLimits;
  log: Logger;
  onListen?: (addr: Deno.NetAddr) => void;
  /** The answer when the handler throws. */
  onError(error: unknown): PlainResponse;
}

export interface Http1Server {
  addr: Deno.NetAddr;
  /** Resolves once the server has stopped and every connection is closed. */
  finished: Promise<void>;
  /** Stops accepting, closes idle connections, lets answers in progress finish (at most 1 s). */
  shutdown(): Promise<void>;
}

/** Between attempts while accept(2) fails (out of descriptors, out of memory). */
const ACCEPT_RETRY_MS = 100;
/** A failure episode ends when accept(2) has not failed for this long. */
const ACCEPT_RECOVERED_MS = 1000;
const STOP_GRACE_MS = 1000;

export function serveHttp1(options: Http1ServerOptions, handler: RequestHandler): Http1Server {
  const { log, limits } = options;
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  const fileLimit = openFileLimit();
  const maxConnections = connectionCap(limits.maxConnections, fileLimit);
  if (maxConnections < limits.maxConnections) {
    log.warn("connection cap lowered to fit the open-file limit", {
      maxConnections,
      openFileLimit: fileLimit,
    });
  }
  const table = createConnectionTable(limits, maxConnections, log);
  let stopping = false;
  const connections = new Set<Promise<void>>();
  const context = {
    handler,
    onError: options.onError,
    log,
    stopping: () => stopping,
  };

  /** Since when accept(2) has been failing, and why; undefined while it works. */
  let failing: { since: number; last: number; error: string; attempts: number } | undefined;
  /** Logs the end of a failure episode once accept(2) has not failed for ACCEPT_RECOVERED_MS. */
  const watchRecovery = async (): Promise<void> => {
    while (failing !== undefined && !stopping) {
      const wait = failing.last + ACCEPT_RECOVERED_MS - performance.now();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      log.info("accepting connections again", {
        error: failing.error,
        failedAttempts: failing.attempts,
        afterMs: Math.round(failing.last - failing.since),
      });
      failing = undefined;
    }
  };
  const acceptFailed = (error: unknown): void => {
    const code = (error as { code?: string }).code ?? String(error);
    const now = performance.now();
    if (failing === undefined) {
      failing = { since: now, last: now, error: code, attempts: 0 };
      const outOfDescriptors = code === "EMFILE" || code === "ENFILE";
      // Idle keep-alive connections are the cheapest to give up.
      const closedIdle = outOfDescriptors ? table.closeIdle("out of file descriptors") : 0;
      log.warn(
        outOfDescriptors
          ? "out of file descriptors: new connections wait until some close"
          : "accepting connections failed; retrying",
        { error: code, connections: table.size(), openFileLimit: fileLimit, closedIdle },
      );
    }
    failing.attempts++;
    failing.last = now;
    if (failing.attempts === 1) watchRecovery();
  };

  const acceptLoop = async (): Promise<void> => {
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping) break;
        acceptFailed(error);
        await sleep(ACCEPT_RETRY_MS);
        continue;
      }
      const remote = conn.remoteAddr as Deno.NetAddr;
      const slot = table.admit(conn, remote.hostname);
      if ("shed" in slot) {
        // Awaited before the next accept, so a flood of refused connections never holds more
        // descriptors than the caps allow: a 503 this small always fits a fresh socket's send
        // buffer, so the write does not wait for the client.
        await refuse(conn, slot.shed);
        continue;
      }
      const served = serveConnection(conn, slot, context);
      connections.add(served);
      served.finally(() => connections.delete(served));
    }
  };

  options.onListen?.(addr);
  const accepting = acceptLoop();
  let stopped: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      await accepting;
      table.closeIdle("stopping");
      await Promise.race([Promise.all(connections), sleep(STOP_GRACE_MS)]);
      table.closeAll();
      await Promise.all(connections);
      table.stop();
    })();
    return stopped;
  };
  let finish: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  accepting.then(() => shutdown()).then(() => finish());
  return { addr, finished, shutdown };
}

const SHED_MESSAGES = {
  "too many connections": "the metadata service holds as many connections as it may; retry shortly",
  "too many from one client":
    "this client holds as many connections as one client may; retry shortly",
} as const;

/** The 503 for each cap, made once: shedding must cost as little as possible. */
const shedResponses = new Map<ShedReason, Uint8Array>();

function shedResponse(reason: ShedReason): Uint8Array {
  let bytes = shedResponses.get(reason);
  if (bytes === undefined) {
    const response = errorAnswer(503, "too_many_connections", SHED_MESSAGES[reason], {
      headers: { "retry-after": "1" },
    });
    bytes = responseBytes(response, { head: false, close: true, date: false });
    shedResponses.set(reason, bytes);
  }
  return bytes;
}

/** Answers a connection beyond a cap with 503 and closes it. */
async function refuse(conn: Deno.Conn, reason: ShedReason): Promise<void> {
  try {
    await conn.write(shedResponse(reason));
  } catch {
    /* the client is gone already */
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}
