/**
 * What a container gets from the kubelet, for tests of what the webhook
 * writes: the webhook's real JSON Patch applied to a pod, then one container
 * materialised as the kubelet would start it.
 *
 * - env: literal values `$(VAR)`-expanded on bytes (kubelet_expansion.ts),
 *   `valueFrom.fieldRef` read from the pod, in the order of `env`;
 * - volumes: downward API, Secret, ConfigMap, projected (ServiceAccount
 *   tokens included) written by an atomic writer: a `..<timestamp>` directory,
 *   `..data` pointing at it, and one `name -> ..data/name` link per file;
 * - the process: started in private mount and network namespaces, each volume
 *   bound read-only at its mountPath (under a fresh /run, where the webhook
 *   mounts everything) and the environment passed as exact bytes, so a value
 *   the kubelet would corrupt arrives corrupted.
 *
 * Needs root (unshare, mount, ip); tests skip without it.
 */

import { Buffer } from "node:buffer";
import { createWebhookApp } from "../services/webhook/routes.ts";
import type { InjectionSettings } from "../services/webhook/config.ts";
import { createMetrics } from "../services/webhook/metrics.ts";
import { createLogger } from "../services/shared/log.ts";
import { METADATA_ADDRESS } from "../services/shared/contract.ts";
import { isObject, type JsonObject, type JsonValue } from "../services/webhook/json_patch.ts";
import { podCreateReview } from "./admission_review.ts";
import { downwardApiMap } from "./atomic_writer.ts";
import { sidecarCommand } from "./sidecar_artifact.ts";
import { expand, lookupIn } from "./kubelet_expansion.ts";
import { stopProcess } from "./processes.ts";

const encoder = new TextEncoder();

/** Whether this process may create namespaces and mounts. */
export function canMaterialise(): boolean {
  return Deno.uid() === 0;
}

// ---------------------------------------------------------------------------
// The webhook's patch.

/** Sends `pod` to the real /mutate-pod endpoint and returns its JSON Patch (decoded). */
export async function webhookPatch(
  pod: JsonObject,
  settings: InjectionSettings,
): Promise<JsonObject[]> {
  const handler = createWebhookApp({
    settings,
    maxRequestBytes: 4 * 1024 * 1024,
    metrics: createMetrics(),
    log: createLogger({ component: "webhook", level: "error", sink: () => {} }),
    notReadyReason: () => undefined,
  });
  const review = podCreateReview(pod, { uid: "kubelet-harness" });
  const body = encoder.encode(JSON.stringify(review));
  const reply = await handler({
    method: "POST",
    path: "/mutate-pod",
    readBody: () => Promise.resolve(body),
  });
  if (reply.status !== 200) throw new Error(`/mutate-pod answered ${reply.status}: ${reply.body}`);
  const response = JSON.parse(reply.body).response;
  if (!response.patch) return [];
  return JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
}

function unescapeToken(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** Applies RFC 6902 `add`, `replace` and `remove` operations to a copy of `document`. */
export function applyPatch(document: JsonObject, operations: JsonObject[]): JsonObject {
  const root = structuredClone(document);
  for (const operation of operations) {
    const path = String(operation.path);
    const tokens = path.split("/").slice(1).map(unescapeToken);
    const last = tokens.pop()!;
    let parent: JsonValue = root;
    for (const token of tokens) {
      const next: JsonValue | undefined = Array.isArray(parent)
        ? parent[Number(token)]
        : isObject(parent)
        ? parent[token]
        : undefined;
      if (next === undefined || next === null || typeof next !== "object") {
        throw new Error(`${operation.op} ${path}: ${token} does not exist`);
      }
      parent = next;
    }
    const value = structuredClone(operation.value) as JsonValue;
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (operation.op === "add") parent.splice(index, 0, value);
      else if (operation.op === "replace") parent[index] = value;
      else if (operation.op === "remove") parent.splice(index, 1);
      else throw new Error(`unsupported operation ${operation.op}`);
    } else if (isObject(parent)) {
      if (operation.op === "add") parent[last] = value;
      else if (operation.op === "replace") {
        if (!(last in parent)) throw new Error(`replace ${path}: nothing to replace`);
        parent[last] = value;
      } else if (operation.op === "remove") delete parent[last];
      else throw new Error(`unsupported operation ${operation.op}`);
    } else {
      throw new Error(`${operation.op} ${path}: the parent is not a container`);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------
// Field references.

/** The value of a downward API `fieldPath` of `pod`, as the kubelet reads it. */
export function fieldValue(pod: JsonObject, fieldPath: string): string {
  const metadata = (pod.metadata ?? {}) as JsonObject;
  const spec = (pod.spec ?? {}) as JsonObject;
  const keyed = /^metadata\.(annotations|labels)\['(.*)'\]$/.exec(fieldPath);
  if (keyed) {
    const map = (metadata[keyed[1]] ?? {}) as Record<string, string>;
    return map[keyed[2]] ?? "";
  }
  switch (fieldPath) {
    case "metadata.name":
    case "metadata.namespace":
    case "metadata.uid":
      return String(metadata[fieldPath.slice("metadata.".length)] ?? "");
    case "spec.nodeName":
      return String(spec.nodeName ?? "");
    case "spec.serviceAccountName":
      return String(spec.serviceAccountName ?? "default");
    default:
      throw new Error(`fieldPath ${fieldPath} is not supported by this harness`);
  }
}

// ---------------------------------------------------------------------------
// The container.

export interface ClusterObjects {
  /** Secret name → key → bytes (or text). */
  secrets?: Record<string, Record<string, Uint8Array | string>>;
  /** ConfigMap name → key → text. */
  configMaps?: Record<string, Record<string, string>>;
  /** The token the kubelet requests for `audience` (undefined: the API server's). */
  token?: (audience: string | undefined) => string;
  /** Service-link variables, looked up after the container's own env. */
  serviceEnv?: Record<string, string>;
}

export interface Materialised {
  container: JsonObject;
  /** The container's environment in order, as the bytes the process gets. */
  env: [string, Uint8Array][];
  /** mountPath → the directory holding the volume's files on this machine. */
  mounts: { mountPath: string; dir: string; readOnly: boolean }[];
  /** Where the volumes were written; remove() deletes it. */
  root: string;
  remove(): Promise<void>;
}

function list(value: JsonValue | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

/** The env of `container` as the kubelet computes it. */
export function containerEnv(
  pod: JsonObject,
  container: JsonObject,
  serviceEnv: Record<string, string> = {},
): [string, Uint8Array][] {
  const defined = new Map<string, Uint8Array>();
  const services = new Map(
    Object.entries(serviceEnv).map(([name, value]) => [name, encoder.encode(value)]),
  );
  const lookup = lookupIn(defined, services);
  const order: string[] = [];
  for (const entry of list(container.env)) {
    const name = String(entry.name);
    let value: Uint8Array;
    if (typeof entry.value === "string" && entry.value !== "") {
      value = expand(encoder.encode(entry.value), lookup);
    } else if (isObject(entry.valueFrom) && isObject(entry.valueFrom.fieldRef)) {
      value = encoder.encode(fieldValue(pod, String(entry.valueFrom.fieldRef.fieldPath)));
    } else if (entry.valueFrom !== undefined) {
      throw new Error(`env ${name}: only value and valueFrom.fieldRef are supported`);
    } else {
      value = new Uint8Array();
    }
    if (!defined.has(name)) order.push(name);
    defined.set(name, value);
  }
  return order.map((name) => [name, defined.get(name)!]);
}

/** File path (relative) → bytes, for one volume source. */
type Files = Map<string, Uint8Array>;

function keyItems(
  kind: string,
  name: string,
  data: Record<string, Uint8Array | string> | undefined,
  source: JsonObject,
): Files {
  if (data === undefined) {
    if (source.optional === true) return new Map();
    throw new Error(`${kind} ${name} does not exist; the kubelet would not start the container`);
  }
  const files: Files = new Map();
  const items = list(source.items);
  const pairs = items.length > 0
    ? items.map((item) => [String(item.key), String(item.path)])
    : Object.keys(data).map((key) => [key, key]);
  for (const [key, path] of pairs) {
    const value = data[key];
    if (value === undefined) {
      if (source.optional === true) continue;
      throw new Error(
        `${kind} ${name} has no key ${key}; the kubelet would not start the container`,
      );
    }
    files.set(path, typeof value === "string" ? encoder.encode(value) : value);
  }
  return files;
}

function sourceFiles(pod: JsonObject, source: JsonObject, cluster: ClusterObjects): Files {
  if (isObject(source.downwardAPI)) {
    const files: Files = new Map();
    const metadata = (pod.metadata ?? {}) as Record<string, Record<string, string>>;
    for (const item of list(source.downwardAPI.items)) {
      if (!isObject(item.fieldRef)) {
        throw new Error("downwardAPI: only fieldRef items are supported");
      }
      const fieldPath = String(item.fieldRef.fieldPath);
      // A whole map (files only, never env): sorted key="value" lines.
      const whole = /^metadata\.(labels|annotations)$/.exec(fieldPath);
      const text = whole ? downwardApiMap(metadata[whole[1]] ?? {}) : fieldValue(pod, fieldPath);
      files.set(String(item.path), encoder.encode(text));
    }
    return files;
  }
  if (isObject(source.secret)) {
    const name = String(source.secret.name ?? source.secret.secretName);
    return keyItems("Secret", name, cluster.secrets?.[name], source.secret);
  }
  if (isObject(source.configMap)) {
    const name = String(source.configMap.name);
    return keyItems("ConfigMap", name, cluster.configMaps?.[name], source.configMap);
  }
  if (isObject(source.serviceAccountToken)) {
    const token = source.serviceAccountToken;
    const audience = typeof token.audience === "string" ? token.audience : undefined;
    const text = (cluster.token ?? (() => "token"))(audience);
    return new Map([[String(token.path), encoder.encode(text)]]);
  }
  throw new Error(`volume source ${Object.keys(source).join(", ")} is not supported`);
}

function volumeFiles(pod: JsonObject, volume: JsonObject, cluster: ClusterObjects): Files {
  if (isObject(volume.projected)) {
    const files: Files = new Map();
    for (const source of list(volume.projected.sources)) {
      for (const [path, bytes] of sourceFiles(pod, source, cluster)) files.set(path, bytes);
    }
    return files;
  }
  if (isObject(volume.secret)) {
    return sourceFiles(pod, { secret: volume.secret }, cluster);
  }
  const { name: _name, ...source } = volume;
  return sourceFiles(pod, source, cluster);
}

/** Writes `files` into `dir` the way the kubelet's atomic writer does. */
export async function writeAtomically(dir: string, files: Files): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, "_")}${crypto.randomUUID()}`;
  const data = `${dir}/${stamp}`;
  await Deno.mkdir(data);
  const topLevel = new Set<string>();
  for (const [path, bytes] of files) {
    if (path.startsWith("/") || path.split("/").includes("..")) {
      throw new Error(`volume path ${path} escapes the volume`);
    }
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${data}/${path.slice(0, slash)}`, { recursive: true });
    await Deno.writeFile(`${data}/${path}`, bytes, { mode: 0o644 });
    topLevel.add(path.split("/")[0]);
  }
  await Deno.symlink(stamp, `${dir}/..data_tmp`);
  await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
  for (const name of topLevel) await Deno.symlink(`..data/${name}`, `${dir}/${name}`);
}

/** The container `name` of `pod` (containers or initContainers), with its env and volumes. */
export async function materialise(
  pod: JsonObject,
  name: string,
  cluster: ClusterObjects = {},
): Promise<Materialised> {
  const spec = pod.spec as JsonObject;
  const container = [...list(spec.initContainers), ...list(spec.containers)]
    .find((candidate) => candidate.name === name);
  if (!container) throw new Error(`the pod has no container ${name}`);
  const env = containerEnv(pod, container, cluster.serviceEnv);
  const root = await Deno.makeTempDir({ prefix: "imds-kubelet-" });
  const volumes = new Map(list(spec.volumes).map((volume) => [String(volume.name), volume]));
  const mounts: Materialised["mounts"] = [];
  try {
    for (const mount of list(container.volumeMounts)) {
      const volume = volumes.get(String(mount.name));
      if (!volume) throw new Error(`volumeMount ${mount.name}: the pod has no such volume`);
      const dir = `${root}/${mount.name}`;
      // An emptyDir starts as a plain empty directory the container may write.
      if (isObject(volume.emptyDir)) await Deno.mkdir(dir, { recursive: true });
      else await writeAtomically(dir, volumeFiles(pod, volume, cluster));
      mounts.push({ mountPath: String(mount.mountPath), dir, readOnly: mount.readOnly === true });
    }
  } catch (error) {
    await Deno.remove(root, { recursive: true });
    throw error;
  }
  return {
    container,
    env,
    mounts,
    root,
    remove: () => Deno.remove(root, { recursive: true }),
  };
}

// ---------------------------------------------------------------------------
// The process.

export interface ContainerProcess {
  child: Deno.ChildProcess;
  pid: number;
  /** Runs `command` inside the container's network namespace (e.g. curl). */
  inNetwork(command: string[]): Promise<Deno.CommandOutput>;
  stop(): Promise<Deno.CommandStatus>;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Starts `command` as the container's process: private mount and network
 * namespaces, a fresh tmpfs on /run with each volume bound at its mountPath,
 * loopback up with `addresses` on it, and exactly the container's environment
 * (plus `imageEnv`, the image's own ENV, which the container's env overrides).
 */
export async function startContainerProcess(
  materialised: Materialised,
  command: string[],
  options: { imageEnv?: Record<string, string>; addresses?: string[] } = {},
): Promise<ContainerProcess> {
  const dir = `${materialised.root}/..process`;
  await Deno.mkdir(`${dir}/env`, { recursive: true });
  // PATH for the set-up commands only: it is not exported to the container.
  const lines = [
    "set -e",
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    "mount -t tmpfs -o mode=0755 tmpfs /run",
  ];
  for (const mount of materialised.mounts) {
    if (!/^\/(var\/)?run\//.test(mount.mountPath)) {
      throw new Error(`mountPath ${mount.mountPath} is not under /run; the harness cannot bind it`);
    }
    const target = mount.mountPath.replace(/^\/var\/run\//, "/run/");
    lines.push(`mkdir -p ${shellQuote(target)}`);
    lines.push(`mount --bind ${shellQuote(mount.dir)} ${shellQuote(target)}`);
    if (mount.readOnly) {
      lines.push(`mount -o remount,bind,ro ${shellQuote(target)}`);
    }
  }
  lines.push("ip link set lo up");
  for (const address of options.addresses ?? []) {
    lines.push(`ip address add ${shellQuote(address)} dev lo`);
  }
  // Values are read from files so every byte (even invalid UTF-8) reaches the
  // process; the trailing "x" keeps command substitution from eating newlines.
  const names: string[] = [];
  const values = new Map<string, Uint8Array>();
  for (const [name, value] of Object.entries(options.imageEnv ?? {})) {
    values.set(name, encoder.encode(value));
  }
  for (const [name, value] of materialised.env) values.set(name, value);
  let index = 0;
  for (const [name, value] of values) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`env name ${name} is not portable`);
    if (value.includes(0)) throw new Error(`env ${name} holds a NUL byte`);
    const file = `${dir}/env/${index++}`;
    await Deno.writeFile(file, value);
    lines.push(`v=$(cat ${shellQuote(file)}; printf x); ${name}=\${v%x}; export ${name}`);
    names.push(name);
  }
  lines.push("unset v");
  lines.push(`exec ${command.map(shellQuote).join(" ")}`);
  const script = `${dir}/start.sh`;
  await Deno.writeTextFile(script, lines.join("\n") + "\n");
  const child = new Deno.Command("unshare", {
    args: ["--mount", "--net", "--propagation", "private", "/usr/bin/env", "-i", "/bin/sh", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return {
    child,
    pid: child.pid,
    inNetwork: (argv) =>
      new Deno.Command("nsenter", {
        args: [`--target=${child.pid}`, "--net", ...argv],
        stdout: "piped",
        stderr: "piped",
      }).output(),
    stop: () => stopProcess(child),
  };
}

/**
 * Starts the real sidecar's metadata server (`serve`: its bundle with the deno.json `sidecar`
 * task's runtime flags, as the image runs it) as the container's process; HOME and DENO_DIR stand in for the image's ENV.
 */
export async function startSidecarServe(
  materialised: Materialised,
  addresses: string[] = [],
): Promise<ContainerProcess> {
  return startContainerProcess(
    materialised,
    [...await sidecarCommand(), "serve"],
    {
      imageEnv: { HOME: Deno.env.get("HOME") ?? "/root", DENO_DIR: Deno.env.get("DENO_DIR") ?? "" },
      addresses,
    },
  );
}

/**
 * A request to the metadata address from inside the container's network namespace (curl, 5 s
 * at most): the status (0 when nothing answered) and the exact body bytes.
 */
export async function metadataRequest(
  process: ContainerProcess,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Uint8Array }> {
  const output = await process.inNetwork([
    "curl",
    "--silent",
    "--max-time",
    "5",
    "--request",
    options.method ?? "GET",
    "--output",
    "-",
    "--write-out",
    "\n%{http_code}",
    ...Object.entries(options.headers ?? {}).flatMap(([name, value]) => [
      "--header",
      `${name}: ${value}`,
    ]),
    `http://${METADATA_ADDRESS}${path}`,
  ]);
  const all = output.stdout;
  const newline = all.lastIndexOf(0x0a);
  return {
    status: Number(new TextDecoder().decode(all.subarray(newline + 1))),
    body: all.slice(0, newline),
  };
}
