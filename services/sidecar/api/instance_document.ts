/**
 * What `/v1/instance` serves: the VM's identity and node, its labels, the
 * annotations an operator lets guests read, and its custom metadata
 * (`meta.imds.kubevirt.io/<key>` annotations). Labels and annotations come
 * from the kubelet's downward API files, which it rewrites while the pod runs,
 * so every read checks them (one stat each) and rebuilds the document only
 * when they changed. Each version has an ETag.
 */

import { KUBEVIRT } from "../../shared/contract.ts";
import { readCustomMetadata } from "../../shared/custom_metadata.ts";
import type { Logger } from "../../shared/log.ts";
import type { Identity } from "../config.ts";
import type { DocumentReader } from "./cloud_init_files.ts";
import { parseDownwardApiMap } from "./downward_api_map.ts";
import { type IdentityDocument, identityDocument } from "./identity_document.ts";

export interface InstanceDocument extends IdentityDocument {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  meta: Record<string, string>;
}

/** One version of the instance metadata, or why it cannot be served. */
export type InstanceState =
  | { etag: string; document: InstanceDocument; body: string }
  | { etag: string; unavailable: string }
  | { etag: string; invalid: string[]; document: InstanceDocument };

export interface InstanceSources {
  labels?: DocumentReader;
  annotations?: DocumentReader;
  /** Annotation keys, or prefixes ending in `*`, guests may read. */
  allowedAnnotations: readonly string[];
}

const OWN_LABELS = new Set<string>(KUBEVIRT.ownLabels);
const decoder = new TextDecoder();

export function instanceReader(
  identity: Identity,
  sources: InstanceSources,
  log: Logger,
): () => InstanceState {
  const base = identityFields(identity);
  const allowed = annotationFilter(sources.allowedAnnotations);
  let last: { labels?: Uint8Array; annotations?: Uint8Array; state: InstanceState } | undefined;
  let lastLogged = "";
  const logOnce = (message: string, fields: Record<string, unknown>): void => {
    const key = message + JSON.stringify(fields);
    if (key === lastLogged) return;
    lastLogged = key;
    log.warn(message, fields);
  };
  return () => {
    const labels = read(sources.labels);
    const annotations = read(sources.annotations);
    if ("unavailable" in labels || "unavailable" in annotations) {
      const reason = "unavailable" in labels
        ? `the labels file: ${labels.unavailable}`
        : `the annotations file: ${(annotations as { unavailable: string }).unavailable}`;
      logOnce("instance metadata unreadable", { reason });
      last = undefined;
      return { etag: etagOf(reason), unavailable: reason };
    }
    if (
      last !== undefined && last.labels === labels.bytes && last.annotations === annotations.bytes
    ) {
      return last.state;
    }
    const state = build(base, labels.bytes, annotations.bytes, allowed);
    if ("unavailable" in state) {
      logOnce("instance metadata unreadable", { reason: state.unavailable });
    }
    if ("invalid" in state) logOnce("custom metadata refused", { problems: state.invalid });
    last = { labels: labels.bytes, annotations: annotations.bytes, state };
    return state;
  };
}

function read(
  reader: DocumentReader | undefined,
): { bytes?: Uint8Array } | { unavailable: string } {
  if (reader === undefined) return {};
  return reader();
}

function build(
  base: IdentityDocument,
  labelBytes: Uint8Array | undefined,
  annotationBytes: Uint8Array | undefined,
  allowed: (key: string) => boolean,
): InstanceState {
  const labelMap = labelBytes === undefined
    ? { map: {} }
    : parseDownwardApiMap(decoder.decode(labelBytes));
  if ("error" in labelMap) {
    const reason = `the labels file: ${labelMap.error}`;
    return { etag: etagOf(reason), unavailable: reason };
  }
  const annotationMap = annotationBytes === undefined
    ? { map: {} }
    : parseDownwardApiMap(decoder.decode(annotationBytes));
  if ("error" in annotationMap) {
    const reason = `the annotations file: ${annotationMap.error}`;
    return { etag: etagOf(reason), unavailable: reason };
  }
  const labels = Object.fromEntries(
    Object.entries(labelMap.map).filter(([key]) => !OWN_LABELS.has(key)),
  );
  const annotations = Object.fromEntries(
    Object.entries(annotationMap.map).filter(([key]) => allowed(key)),
  );
  const custom = readCustomMetadata(annotationMap.map);
  const document: InstanceDocument = { ...base, labels, annotations, meta: custom.entries };
  const body = JSON.stringify(document) + "\n";
  if (custom.problems.length > 0) {
    return { etag: etagOf(body + custom.problems.join("\n")), invalid: custom.problems, document };
  }
  return { etag: etagOf(body), document, body };
}

/** The identity, in the order /v1/instance lists it. */
function identityFields(identity: Identity): IdentityDocument {
  const { namespace, vmName, instanceId, serviceAccountName, ...known } = identityDocument(
    identity,
  );
  return { namespace, vmName, instanceId, serviceAccountName, ...known };
}

/**
 * The labels and custom metadata cloud-init's meta-data carries (NoCloud `labels:` and `meta:`,
 * OpenStack `meta`): both empty while the files are unreadable, and custom metadata empty while
 * it breaks the rules (the sidecar logs why, /v1/instance says it).
 */
export function guestMetaData(
  state: InstanceState | undefined,
): { labels: Record<string, string>; meta: Record<string, string> } {
  if (state === undefined || "unavailable" in state) return { labels: {}, meta: {} };
  const { labels, meta } = state.document;
  return { labels, meta: "invalid" in state ? {} : meta };
}

/** Exact keys, and prefixes written with a trailing `*`. */
export function annotationFilter(patterns: readonly string[]): (key: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith("*")));
  const prefixes = patterns.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));
  return (key) => exact.has(key) || prefixes.some((prefix) => key.startsWith(prefix));
}

/** A strong ETag: FNV-1a (64 bit) of the text, quoted. */
export function etagOf(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return `"${hash.toString(16).padStart(16, "0")}"`;
}
