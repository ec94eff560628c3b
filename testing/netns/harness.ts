/**
 * The network namespace test harness: one gate for every test that needs namespaces, veths and
 * bridges, and the runner for typed scripts that execute inside a namespace.
 *
 * Such tests need root on Linux and the tools the lab drives. Outside root they are skipped
 * with the reason; with CI=true they always run, and fail if they cannot.
 *
 * A script is a module under testing/netns/ run with `deno run`: its inputs arrive as
 * command-line arguments (one JSON document where there is structure), it may write log lines
 * on stdout, and it ends by printing its result as one JSON line, the last one.
 */

/** Tools the harness runs (Debian packages iproute2, nftables, tcpdump, iputils-arping, curl, util-linux). */
export const NETNS_TOOLS = [
  "ip",
  "bridge",
  "nft",
  "tcpdump",
  "arping",
  "curl",
  "setpriv",
  "mount",
  "unshare",
] as const;

function onPath(tool: string): boolean {
  const path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  return path.split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Why network namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (Deno.build.os !== "linux") return "it needs Linux network namespaces";
  if (Deno.uid() !== 0) {
    return "it creates network namespaces, bridges and veths, which needs root (CI runs it as root)";
  }
  const missing = NETNS_TOOLS.filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    return `these tools are missing: ${missing.join(", ")} ` +
      "(apt-get install iproute2 nftables tcpdump iputils-arping curl util-linux mount)";
  }
  return undefined;
}

const reason = netnsUnavailableReason();
const underCi = Deno.env.get("CI") === "true";
let warned = false;

/**
 * Registers a test that needs network namespaces. Outside root it is skipped with a message
 * saying why; with CI=true it always runs, and fails with that message if it cannot.
 */
export function netnsTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (reason !== undefined && !underCi && !warned) {
    warned = true;
    console.warn(`network namespace tests skipped: ${reason}`);
  }
  Deno.test({
    name,
    ignore: reason !== undefined && !underCi,
    async fn(t) {
      if (reason !== undefined) throw new Error(`network namespace tests cannot run: ${reason}`);
      await fn(t);
    },
  });
}

export interface ScriptOutput<T> {
  result: T;
  /** The `msg` of every structured log line the script wrote before its result. */
  logs: string[];
}

/** Where a script runs: a new private namespace of its own, or a named one (`ip netns`). */
export type Place = { private: true } | { namespace: string };

/**
 * Runs `script` (a module URL) with `args` in `place`; returns its last stdout line parsed as
 * JSON, and the log lines before it. Throws, with everything it printed, when it fails.
 */
export async function runScript<T>(
  script: URL,
  args: string[],
  place: Place,
): Promise<ScriptOutput<T>> {
  const deno = [Deno.execPath(), "run", "-A", "--no-lock", script.pathname, ...args];
  const argv = "namespace" in place
    ? ["ip", "netns", "exec", place.namespace, ...deno]
    : ["unshare", "-n", ...deno];
  const output = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  const what = `${script.pathname.split("/").pop()} ${args.join(" ")}`;
  if (!output.success) {
    throw new Error(`${what} failed (exit ${output.code}):\n${stderr}\n${stdout}`);
  }
  return parseScriptOutput<T>(stdout, `${what}:\n${stdout}\n${stderr}`);
}

/** Splits a script's stdout into its log lines' messages and its JSON result (the last line). */
export function parseScriptOutput<T>(stdout: string, context = stdout): ScriptOutput<T> {
  const lines = stdout.trim().split("\n");
  const logs = lines.slice(0, -1).flatMap((line) => {
    try {
      return [String(JSON.parse(line).msg)];
    } catch {
      return [];
    }
  });
  try {
    return { result: JSON.parse(lines.at(-1) ?? "") as T, logs };
  } catch {
    throw new Error(`no JSON result from ${context}`);
  }
}

/** Prints a script's result as its one JSON line (the last thing a script writes). */
export function printResult(result: unknown): void {
  console.log(JSON.stringify(result));
}

const SCENARIOS = new URL("./scenarios.ts", import.meta.url);

/** Runs kernel scenario `name` of scenarios.ts in a new private network namespace. */
export function runScenario<T>(name: string): Promise<ScriptOutput<T>> {
  return runScript<T>(SCENARIOS, [name], { private: true });
}

/** The JSON argument a script was given (its first command-line argument), parsed. */
export function scriptInput<T>(): T {
  const text = Deno.args[0];
  if (text === undefined) throw new Error("expected one JSON argument");
  return JSON.parse(text) as T;
}
