/**
 * Starts the real sidecar (its bundle, as the image runs it, with `run`) inside a lab pod's
 * namespace, collects its JSON log lines, and stops it with SIGTERM.
 */
import { SIDECAR_ENV } from "../../services/shared/contract.ts";
import { type Lab, namespacePids } from "./lab.ts";
import { waitFor } from "./command.ts";
import { sidecarCommand as imageCommand } from "../sidecar_artifact.ts";
import { collectLogLines, type LogLine } from "../log_lines.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname;
/** The capabilities the webhook gives the container (everything else dropped). */
export const CONTAINER_CAPABILITIES = ["net_admin", "net_raw", "net_bind_service"] as const;

/**
 * Runs "$@" as the sidecar container does (securityContext: runAsUser 0,
 * capabilities drop ALL + add NET_ADMIN, NET_RAW, NET_BIND_SERVICE,
 * allowPrivilegeEscalation false, not privileged — so /proc/sys is read-only).
 * `ip netns exec` already gave the command a mount namespace of its own, so the
 * read-only remount stays inside it; `exec` keeps the pid, for SIGTERM.
 */
const CONTAINER_SHELL = [
  "mount --bind /proc/sys /proc/sys",
  "mount -o remount,bind,ro /proc/sys",
  "exec setpriv --no-new-privs --inh-caps=-all" +
  ` --bounding-set=-all,${CONTAINER_CAPABILITIES.map((cap) => `+${cap}`).join(",")} -- "$@"`,
].join(" && ");

/** What the lab VM is, as the webhook would tell the sidecar. */
export interface VmIdentity {
  namespace: string;
  vmName: string;
  serviceAccountName: string;
  podName: string;
  vmiUid: string;
  token: string;
  userData: string;
  networkConfig: string;
}

export function labIdentity(vmName: string): VmIdentity {
  const encode = (value: unknown) =>
    btoa(JSON.stringify(value)).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
  const token = [
    encode({ alg: "RS256", kid: "lab" }),
    encode({ aud: ["https://kubernetes.default.svc"], sub: `system:serviceaccount:vms:${vmName}` }),
    "bGFiLXNpZ25hdHVyZQ",
  ].join(".");
  return {
    namespace: "vms",
    vmName,
    serviceAccountName: `${vmName}-sa`,
    podName: `virt-launcher-${vmName}-x7k2q`,
    vmiUid: crypto.randomUUID(),
    token,
    userData: `#cloud-config\nhostname: ${vmName}\n`,
    networkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",
  };
}

export type { LogLine };

export interface StopResult {
  /** Milliseconds from SIGTERM to the process's exit (undefined: it had to be killed). */
  exitMs?: number;
  code: number;
  signal: Deno.Signal | null;
  /** Processes still in the pod namespace after the stop. */
  strayPids: number[];
}

export interface Sidecar {
  pid: number;
  logs: LogLine[];
  /** Resolves when the process exits. */
  status: Promise<Deno.CommandStatus>;
  /** The first log line (already written or still to come) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The last log lines, for failure messages. */
  tail(count?: number): string;
  /** SIGTERM, then waits up to `graceMs` for the exit (SIGKILL after that). */
  stop(graceMs?: number): Promise<StopResult>;
  /**
   * Like `stop`, but the SIGTERM goes out the moment the first log line `match` accepts is
   * read from the process (for stops in the middle of its start-up).
   */
  stopOnLog(match: (line: LogLine) => boolean, graceMs?: number): Promise<StopResult>;
}

export interface StartOptions {
  identity: VmIdentity;
  /** Extra or overriding IMDS_* variables. */
  env?: Record<string, string>;
}

/**
 * Starts the sidecar's `run` in `podNs`, confined like the real container, with the
 * identity files in a temporary directory.
 */
export async function startSidecar(
  lab: Lab,
  podNs: string,
  options: StartOptions,
): Promise<Sidecar> {
  const { identity } = options;
  const dir = await Deno.makeTempDir({ prefix: `lab-${lab.id}-` });
  lab.defer(() => Deno.remove(dir, { recursive: true }));
  const tokenPath = `${dir}/token`;
  await Deno.writeTextFile(tokenPath, identity.token);
  const env: Record<string, string> = {
    [SIDECAR_ENV.namespace]: identity.namespace,
    [SIDECAR_ENV.vmName]: identity.vmName,
    [SIDECAR_ENV.saName]: identity.serviceAccountName,
    [SIDECAR_ENV.podName]: identity.podName,
    [SIDECAR_ENV.vmiUid]: identity.vmiUid,
    [SIDECAR_ENV.nodeName]: "lab-node",
    [SIDECAR_ENV.tokenPath]: tokenPath,
    [SIDECAR_ENV.userData]: identity.userData,
    [SIDECAR_ENV.networkConfig]: identity.networkConfig,
    // The lab polls and probes from one guest address; keep the rate limit out of the way.
    [SIDECAR_ENV.rateLimit]: "1000",
    [SIDECAR_ENV.rateLimitBurst]: "1000",
    [SIDECAR_ENV.logLevel]: "debug",
    ...options.env,
  };
  const sidecarCommand = [...await imageCommand(), "run"];
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", podNs, "sh", "-c", CONTAINER_SHELL, "sidecar", ...sidecarCommand],
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  const { logs, raw, watch, ended: readers } = collectLogLines(child.stdout, child.stderr);
  const status = child.status.then(async (result) => {
    await readers;
    return result;
  });
  let exited = false;
  child.status.then(() => exited = true);
  lab.defer(async () => {
    try {
      if (!exited) child.kill("SIGKILL");
    } catch { /* it exited meanwhile */ }
    await status;
  });

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 10_000) =>
    waitFor("a matching sidecar log line", () => {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      if (exited) throw new Error(`sidecar exited; last lines:\n${raw.slice(-15).join("\n")}`);
      return Promise.resolve(undefined);
    }, { timeoutMs, intervalMs: 20 });

  const terminate = (): number => {
    try {
      if (!exited) child.kill("SIGTERM");
    } catch { /* it exited meanwhile */ }
    return performance.now();
  };
  const awaitStop = async (started: number, graceMs: number): Promise<StopResult> => {
    const timer = new Promise<"timeout">((resolve) => {
      const id = setTimeout(() => resolve("timeout"), graceMs);
      child.status.then(() => clearTimeout(id));
    });
    const first = await Promise.race([child.status.then(() => "exited" as const), timer]);
    const exitMs = first === "exited" ? performance.now() - started : undefined;
    if (first === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch { /* it exited meanwhile */ }
    }
    const result = await child.status;
    const strayPids = await namespacePids(podNs);
    // A stray process may still hold the log pipes; the lab's clean-up kills it.
    if (strayPids.length === 0) await readers;
    return { exitMs, code: result.code, signal: result.signal, strayPids };
  };

  return {
    pid: child.pid,
    logs,
    status,
    waitForLog,
    tail: (count = 30) => raw.slice(-count).join("\n"),
    stop: (graceMs = 1500) => awaitStop(terminate(), graceMs),
    stopOnLog(match, graceMs = 1500) {
      return new Promise<number>((resolve) => {
        if (logs.some(match) || exited) return resolve(terminate());
        watch((line) => {
          if (match(line)) resolve(terminate());
        });
        // Never seen (the process exited first): nothing to wait for.
        child.status.then(() => resolve(performance.now()));
      }).then((started) => awaitStop(started, graceMs));
    },
  };
}

/** True for log lines whose message matches `pattern`. */
export function logMatching(pattern: RegExp): (line: LogLine) => boolean {
  return (line) => typeof line.msg === "string" && pattern.test(line.msg);
}
