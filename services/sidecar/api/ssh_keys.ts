/**
 * SSH public keys for the guest, from mounted Secrets: IMDS_SSH_KEYS_DIR
 * holds one directory per Secret (named after it), each holding one file per
 * Secret key, as the kubelet writes Secret volumes. Every line of every file
 * that is an OpenSSH public key is served; anything else is skipped, with one
 * log line per skipped line saying which Secret and key and why. A change of
 * the mounted files (the kubelet's `..data` swap when a Secret is updated)
 * is noticed on the next request, without a restart.
 */

import type { Logger } from "../../shared/log.ts";

export interface SshKey {
  /** `<secret>/<key>`, with `-2`, `-3`… for further lines of the same file. */
  name: string;
  /** The key type, e.g. `ssh-ed25519`. */
  type: string;
  /** The whole line: `type base64 [comment]`. */
  line: string;
}

/** Returns the current keys; never throws. */
export type SshKeyReader = () => readonly SshKey[];

/** Files larger than this are skipped: no public key file comes close. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** At most this many keys are served; further ones are skipped. */
export const MAX_KEYS = 100;

const KEY_TYPES = new Set([
  "ssh-rsa",
  "ssh-ed25519",
  "ssh-dss",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);

const NONE: readonly SshKey[] = Object.freeze([]);

export function sshKeyReader(dir: string | undefined, log: Logger): SshKeyReader {
  if (dir === undefined) return () => NONE;
  let cached: { version: string; keys: readonly SshKey[] } | undefined;
  return () => {
    const { files, empty } = listKeyFiles(dir);
    const version = files.map((file) => `${file.path}@${file.version}`).concat(empty).join("\n");
    if (cached?.version !== version) {
      for (const secret of empty) {
        log.warn("SSH key Secret has no keys: it is missing or empty", { secret });
      }
      cached = { version, keys: readKeys(files, log) };
    }
    return cached.keys;
  };
}

interface KeyFile {
  secret: string;
  key: string;
  path: string;
  /** Changes whenever the file's content may have. */
  version: string;
}

/**
 * Every candidate file, sorted, and the Secret directories holding none (the
 * kubelet mounts an optional Secret that does not exist as an empty one).
 * The kubelet's `..`-prefixed entries are left out.
 */
function listKeyFiles(dir: string): { files: KeyFile[]; empty: string[] } {
  const files: KeyFile[] = [];
  const empty: string[] = [];
  const visit = (path: string, secret: string, depth: number) => {
    const before = files.length;
    for (const name of safeReadDir(path)) {
      if (name.startsWith(".")) continue;
      const full = `${path}/${name}`;
      const info = safeStat(full);
      if (info === undefined) continue;
      if (info.isDirectory && depth === 0) visit(full, name, 1);
      else if (info.isFile) {
        files.push({
          secret,
          key: name,
          path: full,
          version: `${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`,
        });
      }
    }
    if (depth === 1 && files.length === before) empty.push(secret);
  };
  visit(dir, baseName(dir), 0);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, empty: empty.sort() };
}

function readKeys(files: KeyFile[], log: Logger): readonly SshKey[] {
  const keys: SshKey[] = [];
  const seen = new Set<string>();
  const skip = (file: KeyFile, line: number | undefined, reason: string) =>
    log.warn("SSH public key skipped", { secret: file.secret, key: file.key, line, reason });
  for (const file of files) {
    let text: string;
    try {
      const bytes = Deno.readFileSync(file.path);
      if (bytes.length > MAX_KEY_FILE_BYTES) {
        skip(file, undefined, `the value is ${bytes.length} bytes, over ${MAX_KEY_FILE_BYTES}`);
        continue;
      }
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (error) {
      skip(file, undefined, error instanceof TypeError ? "not UTF-8 text" : "cannot be read");
      continue;
    }
    let index = 0;
    for (const [number, raw] of text.split("\n").entries()) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const parsed = parsePublicKey(line);
      if ("problem" in parsed) {
        skip(file, number + 1, parsed.problem);
        continue;
      }
      const identity = `${parsed.type} ${parsed.blob}`;
      if (seen.has(identity)) continue;
      if (keys.length >= MAX_KEYS) {
        skip(file, number + 1, `more than ${MAX_KEYS} keys`);
        continue;
      }
      seen.add(identity);
      index++;
      keys.push({
        name: `${file.secret}/${file.key}${index > 1 ? `-${index}` : ""}`,
        type: parsed.type,
        line: parsed.comment === "" ? identity : `${identity} ${parsed.comment}`,
      });
    }
  }
  return Object.freeze(keys);
}

export type ParsedKey = { type: string; blob: string; comment: string } | { problem: string };

/**
 * One OpenSSH public key line: a known type, the base64 key blob (which must
 * itself start with the same type name) and an optional comment. Lines with
 * authorized_keys options are refused: a guest writes them verbatim and
 * cloudbase-init encrypts the password with the first key.
 */
export function parsePublicKey(line: string): ParsedKey {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) return { problem: "holds control characters" };
  const [type, blob, ...rest] = line.split(/[ \t]+/);
  if (!KEY_TYPES.has(type)) {
    return {
      problem: blob !== undefined && KEY_TYPES.has(blob)
        ? "starts with authorized_keys options, which are not accepted"
        : `not an OpenSSH public key (unknown key type ${JSON.stringify(type.slice(0, 40))})`,
    };
  }
  if (blob === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0) {
    return { problem: "the key data is not base64" };
  }
  const bytes = Uint8Array.fromBase64(blob);
  const view = new DataView(bytes.buffer);
  const nameLength = bytes.length >= 4 ? view.getUint32(0) : -1;
  const embedded = nameLength >= 0 && nameLength <= bytes.length - 4
    ? new TextDecoder().decode(bytes.subarray(4, 4 + nameLength))
    : undefined;
  if (embedded !== type) return { problem: `the key data is not a ${type} key` };
  return { type, blob, comment: rest.join(" ") };
}

function safeReadDir(path: string): string[] {
  try {
    return Array.from(Deno.readDirSync(path), (entry) => entry.name);
  } catch {
    return [];
  }
}

function safeStat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

function baseName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}
