/**
 * For tests of the kernel-facing code: run a scenario of scenarios.ts in a fresh,
 * private network namespace (`unshare -n`, gone when the process exits, so nothing can leak
 * into the host or collide with parallel runs) and get its JSON result back.
 *
 * Needs root. Outside root such tests are skipped with the reason; with CI=true they always
 * run, and fail if they cannot.
 */

const SCENARIOS = new URL("./scenarios.ts", import.meta.url);

function unavailableReason(): string | undefined {
  if (Deno.build.os !== "linux") return "it needs Linux network namespaces";
  if (Deno.uid() !== 0) {
    return "it creates a network namespace, veths and bridges, which needs root (CI runs it as root)";
  }
  return undefined;
}

const reason = unavailableReason();
const underCi = Deno.env.get("CI") === "true";

/** A test that needs a private network namespace (root). */
export function netnsTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: reason !== undefined && !underCi,
    async fn() {
      if (reason !== undefined) throw new Error(`cannot run: ${reason}`);
      await fn();
    },
  });
  if (reason !== undefined && !underCi) {
    console.warn(`skipping "${name}": ${reason}`);
  }
}

export interface ScenarioOutput<T> {
  result: T;
  /** The `msg` of every structured log line the scenario's process wrote. */
  logs: string[];
}

/** Runs `scenario` in a new network namespace; returns its JSON result and its log lines. */
export async function runScenario<T>(scenario: string): Promise<ScenarioOutput<T>> {
  const output = await new Deno.Command("unshare", {
    args: ["-n", Deno.execPath(), "run", "-A", "--no-lock", SCENARIOS.pathname, scenario],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`scenario ${scenario} failed (exit ${output.code}):\n${stderr}\n${stdout}`);
  }
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
    throw new Error(`scenario ${scenario} printed no JSON result:\n${stdout}\n${stderr}`);
  }
}
