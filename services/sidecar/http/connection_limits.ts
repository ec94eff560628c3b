/**
 * The bounds on the server's connections: how many it holds (in total and
 * from one client address) and how long each may take.
 *
 * Connections beyond a cap are answered 503 and closed the moment they are
 * accepted (the newest go first). Once a second, while any connection is
 * held, a sweep closes every connection that
 * - has not completed its first request within `headerTimeoutMs` of being
 *   accepted (silent clients, slowloris),
 * - has not completed its next request within `idleTimeoutMs` of its last
 *   response (idle keep-alive), or
 * - takes longer than `headerTimeoutMs` to send a request body the handler
 *   reads, or to take its response (a client that never reads).
 * The total cap is also kept below the process's open-file limit, so that
 * accepting connections never takes the descriptors the rest of the sidecar
 * needs.
 */

import type { Logger } from "../../shared/log.ts";
import { sleep } from "../../shared/sleep.ts";

export interface ConnectionLimits {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  maxPerClient: number;
  maxConnections: number;
  sweepIntervalMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  maxPerClient: 64,
  maxConnections: 256,
  sweepIntervalMs: 1000,
};

/** Descriptors kept free for everything else the sidecar opens (files, netlink, packet sockets). */
export const RESERVED_DESCRIPTORS = 64;

/** How long a connection being closed after an error may take to drain what the client still sends. */
export const LINGER_MS = 1000;

/** The total cap: the configured one, lowered to fit `openFileLimit` when that is known. */
export function connectionCap(configured: number, openFileLimit: number | undefined): number {
  if (openFileLimit === undefined) return configured;
  return Math.max(1, Math.min(configured, openFileLimit - RESERVED_DESCRIPTORS));
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits; undefined when unknown. */
export function openFileLimit(): number | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft === undefined || !/^\d+$/.test(soft) ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** One admitted connection's place in the table; its connection loop reports what it is doing. */
export interface ConnectionSlot {
  readonly client: string;
  /**
   * Waiting for a request: the first (header timeout) or a next one (idle
   * timeout), counted from `since` (a performance.now() reading) when given.
   */
  awaitRequest(first: boolean, since?: number): void;
  /** The handler is answering (its own business how long that takes). */
  handling(): void;
  /** The handler is reading a request body (bounded by the header timeout). */
  readingBody(): void;
  /** A response is being written (bounded by the header timeout); returns when it began. */
  writing(): number;
  /** The response that ends the connection is out; draining until LINGER_MS. */
  closing(): void;
  /** The connection is closed; frees its place. */
  release(): void;
}

export type ShedReason = "too many connections" | "too many from one client";

export interface ConnectionTable {
  /** A place for a new connection from `client`, or why there is none. */
  admit(conn: Deno.Conn, client: string): ConnectionSlot | { shed: ShedReason };
  /** Connections currently held. */
  size(): number;
  /** Closes connections waiting for a next request (keep-alive); returns how many. */
  closeIdle(reason: string): number;
  /** Closes every connection. */
  closeAll(): void;
  /** Stops the sweeps. */
  stop(): void;
}

type Phase =
  | "first request"
  | "next request"
  | "handling"
  | "reading body"
  | "writing"
  | "closing";

interface Entry {
  conn: Deno.Conn;
  client: string;
  phase: Phase;
  deadline: number;
}

const REASON: Record<Phase, string | undefined> = {
  "first request": "no request",
  "next request": "idle",
  "handling": undefined,
  "reading body": "slow body",
  "writing": "response not read",
  "closing": undefined,
};

export function createConnectionTable(
  limits: ConnectionLimits,
  maxConnections: number,
  log: Logger,
): ConnectionTable {
  const entries = new Set<Entry>();
  const perClient = new Map<string, number>();
  /** Closed since the last log line, by reason. */
  let reasons: Record<string, number> = {};
  let closedCount = 0;

  const count = (reason: string | undefined): void => {
    if (reason === undefined) return;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    closedCount++;
  };
  const close = (entry: Entry, reason: string | undefined): void => {
    count(reason);
    entry.phase = "closing";
    entry.deadline = Infinity;
    try {
      entry.conn.close();
    } catch { /* already closed */ }
  };

  const sweep = (): void => {
    const now = performance.now();
    for (const entry of entries) {
      if (now > entry.deadline) close(entry, REASON[entry.phase]);
    }
    if (closedCount > 0) {
      log.warn("closed slow or excess connections", { closed: closedCount, reasons });
      closedCount = 0;
      reasons = {};
    }
  };
  let sweeping = false;
  let stopped = false;
  /**
   * Sweeps every sweepIntervalMs while there is something to sweep (a held
   * connection, or closes not logged yet): an idle server does not wake up.
   * A real timer (under --single-threaded, Atomics.waitAsync timeouts never
   * fire), and not setInterval, which loads Node.js timers (see sleep.ts).
   */
  const armSweeps = async (): Promise<void> => {
    if (sweeping || stopped) return;
    sweeping = true;
    while (!stopped && (entries.size > 0 || closedCount > 0)) {
      await sleep(limits.sweepIntervalMs);
      if (!stopped) sweep();
    }
    sweeping = false;
  };

  return {
    admit(conn, client) {
      const fromClient = perClient.get(client) ?? 0;
      let shed: ShedReason | undefined;
      if (entries.size >= maxConnections) shed = "too many connections";
      else if (fromClient >= limits.maxPerClient) shed = "too many from one client";
      if (shed !== undefined) {
        count(shed);
        armSweeps();
        return { shed };
      }
      perClient.set(client, fromClient + 1);
      const entry: Entry = { conn, client, phase: "first request", deadline: Infinity };
      entries.add(entry);
      armSweeps();
      let released = false;
      /** Enters `phase`, which may last `ms` from `since`; returns `since`. */
      const enter = (phase: Phase, ms: number, since = performance.now()): number => {
        if (entry.phase === "closing" && phase !== "closing") return since;
        entry.phase = phase;
        entry.deadline = since + ms;
        return since;
      };
      return {
        client,
        awaitRequest: (first, since) =>
          void enter(
            first ? "first request" : "next request",
            first ? limits.headerTimeoutMs : limits.idleTimeoutMs,
            since,
          ),
        handling: () => {
          // No deadline, so no clock reading.
          if (entry.phase === "closing") return;
          entry.phase = "handling";
          entry.deadline = Infinity;
        },
        readingBody: () => void enter("reading body", limits.headerTimeoutMs),
        writing: () => enter("writing", limits.headerTimeoutMs),
        closing: () => void enter("closing", LINGER_MS),
        release() {
          if (released) return;
          released = true;
          entries.delete(entry);
          const left = (perClient.get(client) ?? 1) - 1;
          if (left > 0) perClient.set(client, left);
          else perClient.delete(client);
        },
      };
    },
    size: () => entries.size,
    closeIdle(reason) {
      let closed = 0;
      for (const entry of entries) {
        if (entry.phase === "next request") {
          close(entry, reason);
          closed++;
        }
      }
      return closed;
    },
    closeAll() {
      for (const entry of entries) close(entry, undefined);
    },
    stop: () => void (stopped = true),
  };
}
