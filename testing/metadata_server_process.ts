/**
 * The sidecar's metadata server in a process of its own, started with the
 * runtime flags of the deno.json `sidecar` task (what the container runs), on
 * a free port of 127.0.0.1, its JSON log lines collected.
 *
 * `entry: "serve"` runs the sidecar's `serve` as the image does (testing/sidecar_artifact.ts); `entry:
 * "limits"` runs this file, which starts the same server with the connection
 * limits given on its command line (short timeouts, small caps), for tests
 * that cannot wait for the production ones.
 */

import { SIDECAR_ENV } from "../services/shared/contract.ts";
import { createLogger } from "../services/shared/log.ts";
import { processEnv } from "../services/shared/settings.ts";
import { loadSidecarConfig } from "../services/sidecar/config.ts";
import type { ConnectionLimits } from "../services/sidecar/http/connection_limits.ts";
import { startMetadataServer } from "../services/sidecar/api/server.ts";
import { listenForStopSignal } from "../services/sidecar/subcommand.ts";
import { denoRunTask } from "./deno_tasks.ts";
import { sidecarCommand } from "./sidecar_artifact.ts";
import { collectLogLines, type LogLine } from "./log_lines.ts";
import { freePort, stopProcess } from "./processes.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

export type { LogLine };

export interface MetadataServerProcess {
  pid: number;
  port: number;
  logs: LogLine[];
  /** The first log line `match` accepts, waiting up to `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Open file descriptors. */
  openFiles(): number;
  /**
   * The TCP connections on its port that it holds open: its socket descriptors found in
   * /proc/net/tcp as connections (not the listener) on that port.
   */
  connections(): number;
  /** SIGTERM; resolves to the exit status (SIGKILL after 5 s). */
  stop(): Promise<Deno.CommandStatus>;
}

export interface MetadataServerProcessOptions {
  entry: "serve" | "limits";
  /** Connection limits for `entry: "limits"`. */
  limits?: Partial<ConnectionLimits>;
  /** Extra or overriding IMDS_* variables. */
  env?: Record<string, string>;
  /** Run under `prlimit --nofile=N:N`. */
  openFileLimit?: number;
}

export async function startMetadataServerProcess(
  options: MetadataServerProcessOptions,
): Promise<MetadataServerProcess> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "imds-server-process-" });
  await Deno.writeTextFile(`${dir}/token`, "header.eyJleHAiOjQxMDI0NDQ4MDB9.signature");
  const { flags } = denoRunTask("sidecar", "services/sidecar/main.ts");
  const deno = options.entry === "serve"
    ? [...await sidecarCommand(), "serve"]
    : [Deno.execPath(), "run", ...flags, SELF, JSON.stringify(options.limits ?? {})];
  const [command, ...args] = options.openFileLimit === undefined
    ? deno
    : ["prlimit", `--nofile=${options.openFileLimit}:${options.openFileLimit}`, "--", ...deno];
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: {
      [SIDECAR_ENV.listenAddr]: `127.0.0.1:${port}`,
      [SIDECAR_ENV.namespace]: "tests",
      [SIDECAR_ENV.vmName]: "vm",
      [SIDECAR_ENV.tokenPath]: `${dir}/token`,
      [SIDECAR_ENV.rateLimit]: "0",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  const { logs, ended } = collectLogLines(child.stdout, child.stderr);
  let exited = false;
  const status = child.status.then(async (result) => {
    exited = true;
    await ended;
    await Deno.remove(dir, { recursive: true });
    return result;
  });
  const pid = child.pid; // prlimit execs the command: same process
  const waitForLog = async (match: (line: LogLine) => boolean, timeoutMs = 10_000) => {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const found = logs.find(match);
      if (found) return found;
      if (exited || performance.now() > deadline) {
        throw new Error(
          `no matching log line${exited ? " (the process exited)" : ""}; got:\n${
            logs.map((line) => JSON.stringify(line)).join("\n")
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    // The log line rather than a probe connection: a probe would take a connection slot.
    await waitForLog((line) => line.msg === "metadata server listening");
  } catch (error) {
    // Already exited or not: the error names what happened, with the process's log.
    await stopProcess(child, 0);
    await status;
    throw error;
  }

  return {
    pid,
    port,
    logs,
    waitForLog,
    openFiles: () => [...Deno.readDirSync(`/proc/${pid}/fd`)].length,
    connections: () => heldConnections(pid, port),
    async stop() {
      await stopProcess(child, 5000);
      return await status;
    },
  };
}

/** TCP_LISTEN in the `st` column of /proc/net/tcp. */
const TCP_LISTEN = "0A";

function heldConnections(pid: number, port: number): number {
  const sockets = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) sockets.add(inode);
    } catch { /* closed meanwhile */ }
  }
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1).filter((row) => {
    const fields = row.trim().split(/\s+/);
    return fields.length > 9 && fields[1].endsWith(`:${portHex}`) && fields[3] !== TCP_LISTEN &&
      sockets.has(fields[9]);
  }).length;
}

if (import.meta.main) {
  const limits: Partial<ConnectionLimits> = JSON.parse(Deno.args[0] ?? "{}");
  const config = loadSidecarConfig(processEnv);
  const log = createLogger({ component: "sidecar", level: config.logLevel });
  const server = startMetadataServer(config, log, { connectionLimits: limits });
  const stop = listenForStopSignal();
  stop.signal.then(() => server.shutdown());
  await server.finished;
  stop.remove();
  log.info("stopped");
}
