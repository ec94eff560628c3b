/**
 * Server processes for the demo, the benchmarks and tests: a free port on
 * 127.0.0.1, waiting for it to open, and a started process that stops cleanly.
 */

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
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
      }, 3000);
      await child.status;
      clearTimeout(timer);
    },
  };
}
