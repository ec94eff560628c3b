/**
 * cloud-init documents (user-data, vendor-data, network-config), served byte
 * for byte. Inline values are fixed at start-up; files are checked with one
 * stat per request and re-read only when they change. stat follows symlinks,
 * so the kubelet's atomic `..data` symlink swap shows up as a new inode.
 * Reads are synchronous: small files on local volumes.
 */

import type { ContentSource } from "../config.ts";

export type DocumentResult =
  | { bytes: Uint8Array<ArrayBuffer> }
  | { unavailable: string };

/** Returns the document's current bytes; empty when none is configured. */
export type DocumentReader = () => DocumentResult;

const EMPTY = new Uint8Array(0);

export function documentReader(source: ContentSource): DocumentReader {
  switch (source.kind) {
    case "none":
      return () => ({ bytes: EMPTY });
    case "inline": {
      const result = { bytes: source.bytes };
      return () => result;
    }
    case "file":
      return fileReader(source.path);
  }
}

function fileReader(path: string): DocumentReader {
  let cached: { version: string; bytes: Uint8Array<ArrayBuffer> } | undefined;
  return () => {
    try {
      const info = Deno.statSync(path);
      if (!info.isFile) return { unavailable: "not a regular file" };
      const version = `${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
      if (cached?.version !== version) {
        cached = { version, bytes: Deno.readFileSync(path) };
      }
      return { bytes: cached.bytes };
    } catch (error) {
      cached = undefined;
      return { unavailable: error instanceof Error ? error.name : "read failed" };
    }
  };
}
