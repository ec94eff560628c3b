/**
 * Server processes for the demo, the benchmarks and tests: a free port on
 * 127.0.0.1, waiting for it to open, and a started process that stops cleanly.
 */

/** SIGTERM, then SIGKILL after `graceMs`; resolves to the exit status once the process has exited. */
export async function stopProcess(
  child: Deno.ChildProcess,
  graceMs = 3000,
): Promise<Deno.CommandStatus> {
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`port ${port} did not open: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export interface ServerProcess {
  pid: number;
  port: number;
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

/** Starts `command args` with `env`, waits until 127.0.0.1:`port` accepts connections. */
export async function startServer(options: {
  command?: string;
  args: string[];
  env?: Record<string, string>;
  port: number;
  /** Show the process's output (default: discarded). */
  inheritOutput?: boolean;
}): Promise<ServerProcess> {
  const child = new Deno.Command(options.command ?? Deno.execPath(), {
    args: options.args,
    env: options.env,
    stdin: "null",
    stdout: options.inheritOutput ? "inherit" : "null",
    stderr: options.inheritOutput ? "inherit" : "null",
  }).spawn();
  try {
    await waitForPort(options.port);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    throw error;
  }
  return {
    pid: child.pid,
    port: options.port,
    async stop() {
      await stopProcess(child);
    },
  };
}
