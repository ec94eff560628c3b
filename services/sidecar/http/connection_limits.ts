/**
 * Connection limits Deno.serve does not have. It bounds request headers (about
 * 64 KiB, 100 headers) but has no timeouts: a client that connects and sends
 * nothing, sends half a request (slowloris) or keeps an idle keep-alive
 * connection holds it forever, and nothing caps how many it holds.
 *
 * Once a second this lists the process's sockets in /proc/self/fd (cheap) and
 * shuts down (shutdown(2), so Deno.serve sees the peer go away and cleans up)
 * every server connection that
 * - has not completed a request within `headerTimeoutMs` of being seen,
 * - has been idle `idleTimeoutMs` since its last request, or
 * - is beyond `maxPerClient` connections from one address or `maxConnections`
 *   in total (the newest go first).
 * Which sockets are server connections, and from where, comes from
 * /proc/self/net/tcp{,6}; that read is slow when the network namespace holds
 * many sockets, so it happens only when a socket it has not classified yet
 * outlives the header timeout or the number of sockets could exceed a cap.
 * The request handler reports activity with `noteRequest(remotePort)`.
 */

import type { Logger } from "../../shared/log.ts";

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

export interface ConnectionReaper {
  /** Records that a request arrived on the connection from `remotePort`. */
  noteRequest(remotePort: number): void;
  /** Runs one sweep now; resolves to how many connections were shut down. */
  sweep(): Promise<number>;
  stop(): void;
}

/** A server-side TCP connection as /proc shows it. */
export interface TcpConnection {
  inode: string;
  client: string;
  remotePort: number;
}

const ESTABLISHED = "01";
const CLOSE_WAIT = "08";

type Shutdown = (fd: number) => void;

export function startConnectionReaper(
  localPort: number,
  log: Logger,
  limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
): ConnectionReaper {
  // libc is opened on first need: FFI costs resident memory most sidecars never need to spend.
  let shutdown: Shutdown | undefined;
  let ffiUnavailable = false;
  const lastRequest = new Map<number, number>();
  /** Every socket of the process by inode: when first seen, and what it is once known. */
  const sockets = new Map<string, { seen: number; connection?: TcpConnection; other?: true }>();

  const classify = (): void => {
    const connections = new Map(serverConnections(localPort).map((c) => [c.inode, c]));
    for (const [inode, socket] of sockets) {
      const connection = connections.get(inode);
      if (connection) socket.connection = connection;
      else socket.other = true;
    }
  };

  const sweep = async (): Promise<number> => {
    if (ffiUnavailable) return 0;
    const now = performance.now();
    const descriptors = socketDescriptors();
    for (const inode of sockets.keys()) if (!descriptors.has(inode)) sockets.delete(inode);
    let unclassified = 0;
    let oldestUnclassified = now;
    for (const inode of descriptors.keys()) {
      let socket = sockets.get(inode);
      if (socket === undefined) sockets.set(inode, socket = { seen: now });
      if (!socket.connection && !socket.other) {
        unclassified++;
        oldestUnclassified = Math.min(oldestUnclassified, socket.seen);
      }
    }
    const candidates = [...sockets.values()].filter((s) => !s.other).length;
    if (
      unclassified > 0 &&
      (now - oldestUnclassified > limits.headerTimeoutMs ||
        candidates > Math.min(limits.maxPerClient, limits.maxConnections))
    ) {
      classify();
    }

    const doomed = new Map<string, string>();
    const byClient = new Map<string, TcpConnection[]>();
    const connections: TcpConnection[] = [];
    for (const { seen, connection } of sockets.values()) {
      if (connection === undefined) continue;
      connections.push(connection);
      const last = lastRequest.get(connection.remotePort);
      if (last === undefined || last < seen - limits.sweepIntervalMs) {
        if (now - seen > limits.headerTimeoutMs) doomed.set(connection.inode, "no request");
      } else if (now - last > limits.idleTimeoutMs) {
        doomed.set(connection.inode, "idle");
      }
      const list = byClient.get(connection.client) ?? [];
      list.push(connection);
      byClient.set(connection.client, list);
    }
    const seenAt = (c: TcpConnection) => sockets.get(c.inode)!.seen;
    const newestFirst = (a: TcpConnection, b: TcpConnection) => seenAt(b) - seenAt(a);
    for (const list of byClient.values()) {
      const excess = list.length - limits.maxPerClient;
      if (excess > 0) {
        for (const c of list.sort(newestFirst).slice(0, excess)) {
          doomed.set(c.inode, "too many from one client");
        }
      }
    }
    const remaining = connections.filter((c) => !doomed.has(c.inode));
    const overTotal = remaining.length - limits.maxConnections;
    if (overTotal > 0) {
      for (const c of remaining.sort(newestFirst).slice(0, overTotal)) {
        doomed.set(c.inode, "too many connections");
      }
    }
    // Older activity no longer matters: such a connection is idle either way.
    // (Keyed by remote port, so at most 65,536 entries.)
    for (const [port, last] of lastRequest) {
      if (now - last > limits.idleTimeoutMs) lastRequest.delete(port);
    }
    if (doomed.size === 0) return 0;

    shutdown ??= await openShutdown(log);
    if (shutdown === undefined) {
      ffiUnavailable = true;
      return 0;
    }
    let closed = 0;
    const reasons: Record<string, number> = {};
    for (const [inode, reason] of doomed) {
      const fd = descriptors.get(inode);
      if (fd === undefined) continue;
      try {
        // The descriptor may have been closed and reused since the scan: check again.
        if (Deno.readLinkSync(`/proc/self/fd/${fd}`) !== `socket:[${inode}]`) continue;
        shutdown(fd);
        closed++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
        sockets.delete(inode);
      } catch { /* already gone */ }
    }
    if (closed > 0) log.warn("closed slow or excess connections", { closed, reasons });
    return closed;
  };

  // A sweep every interval. Atomics.waitAsync rather than setInterval: the
  // first Deno timer costs about 3 MB of resident memory, this costs nothing.
  const wakeup = new Int32Array(new SharedArrayBuffer(4));
  let running = true;
  (async () => {
    while (running) {
      const wait = Atomics.waitAsync(wakeup, 0, 0, limits.sweepIntervalMs);
      if (wait.async) await wait.value;
      if (!running) break;
      try {
        await sweep();
      } catch (error) {
        log.warn("connection sweep failed", { error });
      }
    }
  })();

  return {
    noteRequest: (remotePort) => void lastRequest.set(remotePort, performance.now()),
    sweep,
    stop: () => {
      running = false;
      Atomics.notify(wakeup, 0);
    },
  };
}

async function openShutdown(log: Logger): Promise<Shutdown | undefined> {
  try {
    const { check, libc, SHUT_RDWR } = await import("../kernel/libc.ts");
    const { shutdown } = libc();
    return (fd) => void check("shutdown", shutdown(fd, SHUT_RDWR));
  } catch (error) {
    log.warn("connection limits are off: cannot call shutdown(2) (needs --allow-ffi)", { error });
    return undefined;
  }
}

/** Established connections accepted on `localPort`, from /proc/self/net/tcp and tcp6. */
export function serverConnections(localPort: number): TcpConnection[] {
  const port = localPort.toString(16).toUpperCase().padStart(4, "0");
  const connections: TcpConnection[] = [];
  for (const file of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [, local, remote, state] = fields;
      if (!local.endsWith(`:${port}`) || (state !== ESTABLISHED && state !== CLOSE_WAIT)) continue;
      const [remoteHex, remotePortHex] = remote.split(":");
      connections.push({
        inode: fields[9],
        client: remoteHex,
        remotePort: parseInt(remotePortHex, 16),
      });
    }
  }
  return connections;
}

/** The process's sockets: inode → file descriptor, from /proc/self/fd. */
function socketDescriptors(): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
      if (target.startsWith("socket:[")) found.set(target.slice(8, -1), Number(entry.name));
    } catch { /* closed meanwhile */ }
  }
  return found;
}
