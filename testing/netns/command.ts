/**
 * Running the lab's tools (ip, nft, sysctl, curl, arping, tcpdump) and
 * reading their output. Every call names the command in its error so a failed
 * topology step says exactly what the kernel refused.
 */

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** Runs `argv` to completion and returns its exit code and output. */
export async function run(
  argv: string[],
  options: { stdin?: string } = {},
): Promise<CommandResult> {
  const command = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `argv` and throws, with the command line and its stderr, unless it exits 0. */
export async function mustRun(argv: string[], options: { stdin?: string } = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    throw new Error(
      `\`${argv.join(" ")}\` exited ${result.code}: ${
        result.stderr.trim() || result.stdout.trim()
      }`,
    );
  }
  return result.stdout;
}

/** `argv` run inside network namespace `ns`. */
export function inNamespace(ns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/** Runs a batch of `ip` commands (one per line) in namespace `ns` with `ip -batch`. */
export async function ipBatch(ns: string, lines: string[]): Promise<void> {
  await mustRun(["ip", "-n", ns, "-batch", "-"], { stdin: lines.join("\n") + "\n" });
}

/** The /proc/sys file of a sysctl key (`net.ipv4.ip_forward`). */
function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

/** Sets sysctls (`key=value`) inside namespace `ns` (through /proc/sys, no procps needed). */
export async function sysctl(ns: string, settings: string[]): Promise<void> {
  const script = settings.map((setting) => {
    const [key, value] = setting.split("=");
    return `echo ${value} > ${sysctlPath(key)}`;
  }).join(" && ");
  await mustRun(inNamespace(ns, ["sh", "-c", script]));
}

/** Reads a sysctl inside namespace `ns`. */
export async function readSysctl(ns: string, key: string): Promise<string> {
  return (await mustRun(inNamespace(ns, ["cat", sysctlPath(key)]))).trim();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await sleep(intervalMs);
  }
}
