/**
 * What the lab does from inside a namespace: HTTP requests with curl, ARP
 * requests with arping, neighbour and address lookups with ip, and packet
 * captures with tcpdump.
 */
import { inNamespace, mustRun, run, waitFor } from "./command.ts";
import { METADATA_ADDRESS, METADATA_HEADER } from "../../services/shared/contract.ts";

export interface HttpReply {
  status: number;
  body: string;
  contentType: string;
}

export interface CurlOptions {
  /** Send `Metadata: true` (default true). */
  metadataHeader?: boolean;
  /** Bind to this interface (SO_BINDTODEVICE), to pick one of several NICs. */
  interface?: string;
  host?: string;
  connectTimeoutSeconds?: number;
  /** The whole request's time limit (default 5 s). */
  maxTimeSeconds?: number;
}

const STATUS_MARK = "\n--lab-status--";

/** GET http://<host><path> from namespace `ns`; throws when no HTTP reply came back. */
export async function curl(
  ns: string,
  path: string,
  options: CurlOptions = {},
): Promise<HttpReply> {
  const host = options.host ?? METADATA_ADDRESS;
  const argv = [
    "curl",
    "-sS",
    "--noproxy",
    "*",
    "--connect-timeout",
    String(options.connectTimeoutSeconds ?? 2),
    "--max-time",
    String(options.maxTimeSeconds ?? 5),
    "-w",
    `${STATUS_MARK}%{http_code} %{content_type}`,
  ];
  if (options.metadataHeader ?? true) argv.push("-H", `${METADATA_HEADER}: true`);
  if (options.interface) argv.push("--interface", options.interface);
  argv.push(`http://${host}${path}`);
  const result = await run(inNamespace(ns, argv));
  if (result.code !== 0) {
    throw new Error(
      `curl ${host}${path} from ${ns} failed (exit ${result.code}): ${result.stderr.trim()}`,
    );
  }
  const at = result.stdout.lastIndexOf(STATUS_MARK);
  const [status, contentType = ""] = result.stdout.slice(at + STATUS_MARK.length).split(" ");
  return { status: Number(status), body: result.stdout.slice(0, at), contentType };
}

/**
 * Waits until `path` answers 200 from `ns` (and `accept` likes the reply, when
 * given); returns that reply.
 */
export function waitForOk(
  ns: string,
  path: string,
  options: CurlOptions & { timeoutMs?: number; accept?: (reply: HttpReply) => boolean } = {},
): Promise<HttpReply> {
  return waitFor(`200 OK for ${path} from ${ns}`, async () => {
    const reply = await curl(ns, path, { connectTimeoutSeconds: 1, ...options });
    const accepted = reply.status === 200 && (options.accept?.(reply) ?? true);
    return accepted ? reply : undefined;
  }, { timeoutMs: options.timeoutMs ?? 15_000, intervalMs: 100 });
}

export interface ArpReply {
  mac: string;
  ms: number;
}

/**
 * Sends `count` ARP who-has requests for `target` out of `iface` in `ns` and
 * returns every reply (empty when nobody answered).
 */
export async function arping(
  ns: string,
  iface: string,
  target: string,
  { count = 2, source }: { count?: number; source?: string } = {},
): Promise<ArpReply[]> {
  const argv = ["arping", "-c", String(count), "-w", String(count), "-I", iface];
  if (source) argv.push("-s", source);
  argv.push(target);
  const result = await run(inNamespace(ns, argv));
  const replies: ArpReply[] = [];
  for (
    const match of result.stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]\s+([\d.]+)ms/g)
  ) {
    replies.push({ mac: match[1].toLowerCase(), ms: Number(match[2]) });
  }
  return replies;
}

/** The link-layer address `ns` has cached for `address` (on `device`, when given), if any. */
export async function neighbourMac(
  ns: string,
  address: string,
  device?: string,
): Promise<string | undefined> {
  const argv = ["ip", "-n", ns, "-j", "neigh", "show", "to", address];
  if (device) argv.push("dev", device);
  const entries = JSON.parse(await mustRun(argv)) as Array<{ lladdr?: string; state?: string[] }>;
  return entries.find((entry) => entry.lladdr)?.lladdr?.toLowerCase();
}

/** The interface `ns` sends packets for `address` out of, or undefined when it has no route. */
export async function routeDevice(ns: string, address: string): Promise<string | undefined> {
  const result = await run(["ip", "-n", ns, "-j", "route", "get", address]);
  if (result.code !== 0) return undefined;
  const routes = JSON.parse(result.stdout) as Array<{ dev?: string }>;
  return routes[0]?.dev;
}

/** Whether `ns` has a host route (/32) for `address` (the sidecar's route back to a guest). */
export async function hasHostRoute(ns: string, address: string): Promise<boolean> {
  const routes = JSON.parse(
    await mustRun(["ip", "-n", ns, "-j", "route", "show", `${address}/32`]),
  ) as unknown[];
  return routes.length > 0;
}

export interface LinkInfo {
  name: string;
  mac: string;
  master?: string;
  addresses: string[];
  operstate: string;
}

/** Every interface in `ns` with its MAC, bridge and IPv4 addresses. */
export async function links(ns: string): Promise<LinkInfo[]> {
  const raw = JSON.parse(await mustRun(["ip", "-n", ns, "-j", "address", "show"])) as Array<{
    ifname: string;
    address?: string;
    master?: string;
    operstate?: string;
    addr_info?: Array<{ family: string; local: string }>;
  }>;
  return raw.map((link) => ({
    name: link.ifname,
    mac: (link.address ?? "").toLowerCase(),
    master: link.master,
    operstate: link.operstate ?? "",
    addresses: (link.addr_info ?? []).filter((a) => a.family === "inet").map((a) => a.local),
  }));
}

/** Interfaces of `ns` that carry the metadata address (the sidecar's side of its veths). */
export async function metadataLinks(ns: string): Promise<LinkInfo[]> {
  return (await links(ns)).filter((link) => link.addresses.includes(METADATA_ADDRESS));
}

export interface Capture {
  /** Stops the capture and returns one line per packet seen. */
  stop(): Promise<string[]>;
}

/** Starts tcpdump on `iface` in `ns` with `filter`; resolves once it is capturing. */
export async function startCapture(ns: string, iface: string, filter: string): Promise<Capture> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      "tcpdump",
      "-i",
      iface,
      "-n",
      "-e",
      "-l",
      "--immediate-mode",
      filter,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderrReader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!stderr.includes("listening on")) {
    const { value, done } = await stderrReader.read();
    if (done) {
      await child.status;
      await stdout;
      throw new Error(`tcpdump on ${ns}/${iface} did not start: ${stderr.trim()}`);
    }
    stderr += value;
  }
  const stderrRest = (async () => {
    while (!(await stderrReader.read()).done) { /* drain */ }
  })();
  return {
    async stop() {
      child.kill("SIGINT");
      await child.status;
      await stderrRest;
      return (await stdout).split("\n").filter((line) => line.trim() !== "");
    },
  };
}
