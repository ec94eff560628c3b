/**
 * Custom metadata: what a VM owner sets as `meta.imds.kubevirt.io/<key>`
 * annotations on `spec.template.metadata`, and the limits it must keep. The
 * webhook uses these rules to warn at `kubectl apply`; the sidecar applies
 * the same rules before it serves the map to the guest.
 */

import { CUSTOM_METADATA_PREFIX } from "./contract.ts";

/** At most this many custom entries per VM. */
export const MAX_CUSTOM_ENTRIES = 64;
/** At most this many bytes (UTF-8) in one value. */
export const MAX_CUSTOM_VALUE_BYTES = 4096;
/** At most this many bytes in all keys and values together. */
export const MAX_CUSTOM_TOTAL_BYTES = 32 * 1024;

/** The name part of a Kubernetes annotation key: what follows the prefix. */
const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export interface CustomMetadata {
  /** The accepted entries, sorted by key. */
  entries: Record<string, string>;
  /** One sentence per refused entry or broken limit; empty when all is well. */
  problems: string[];
}

const encoder = new TextEncoder();

/**
 * Picks the custom entries out of a VM's (or its pod's) annotations and checks
 * them. Entries are refused one by one (bad key, value too large); beyond the
 * count or total size the whole map is over its limits and `problems` says so.
 */
export function readCustomMetadata(annotations: Record<string, unknown>): CustomMetadata {
  const entries: Record<string, string> = {};
  const problems: string[] = [];
  let total = 0;
  let count = 0;
  const keys = Object.keys(annotations).filter((key) => key.startsWith(CUSTOM_METADATA_PREFIX))
    .sort();
  for (const annotation of keys) {
    const key = annotation.slice(CUSTOM_METADATA_PREFIX.length);
    const value = annotations[annotation];
    if (!KEY.test(key)) {
      problems.push(
        `${annotation}: the key after ${CUSTOM_METADATA_PREFIX} must be 1-63 letters, digits, "-", "_" or "." and start and end with a letter or digit`,
      );
      continue;
    }
    if (typeof value !== "string") {
      problems.push(`${annotation}: the value must be a string`);
      continue;
    }
    const bytes = encoder.encode(value).length;
    if (bytes > MAX_CUSTOM_VALUE_BYTES) {
      problems.push(
        `${annotation}: the value is ${bytes} bytes, more than the ${MAX_CUSTOM_VALUE_BYTES} allowed`,
      );
      continue;
    }
    count++;
    total += bytes + key.length;
    entries[key] = value;
  }
  if (count > MAX_CUSTOM_ENTRIES) {
    problems.push(
      `${count} ${CUSTOM_METADATA_PREFIX}* entries, more than the ${MAX_CUSTOM_ENTRIES} allowed`,
    );
  }
  if (total > MAX_CUSTOM_TOTAL_BYTES) {
    problems.push(
      `the ${CUSTOM_METADATA_PREFIX}* entries hold ${total} bytes, more than the ${MAX_CUSTOM_TOTAL_BYTES} allowed`,
    );
  }
  return { entries, problems };
}
