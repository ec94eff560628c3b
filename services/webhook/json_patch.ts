/**
 * JSON Patch (RFC 6902) operations and JSON Pointer (RFC 6901) paths for the
 * admission responses. Paths are built from segments so a key holding `/` or
 * `~` (annotation and label keys do) is always escaped.
 */

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

export type JsonObject = { [key: string]: JsonValue };

export interface AddOperation {
  op: "add";
  path: string;
  value: JsonValue;
}

/** Replaces a member that exists (RFC 6902 fails a `replace` of an absent one). */
export interface ReplaceOperation {
  op: "replace";
  path: string;
  value: JsonValue;
}

export type PatchOperation = AddOperation | ReplaceOperation;

/** Escapes one reference token: `~` → `~0`, `/` → `~1`. */
export function escapeToken(segment: string | number): string {
  return String(segment).replaceAll("~", "~0").replaceAll("/", "~1");
}

/** A JSON Pointer from path segments: `["metadata", "annotations", "a/b"]` → `/metadata/annotations/a~1b`. */
export function pointer(segments: readonly (string | number)[]): string {
  return segments.map((segment) => "/" + escapeToken(segment)).join("");
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The value at `segments` below `root`; undefined where a member on the way is absent or not an object. */
export function valueAt(
  root: JsonValue | undefined,
  segments: readonly string[],
): JsonValue | undefined {
  let current = root;
  for (const segment of segments) current = isObject(current) ? current[segment] : undefined;
  return current;
}

/**
 * An `add` that sets `root[...segments] = value`, creating the missing objects
 * on the way: the operation targets the first absent (or null) member and
 * carries the rest of the path as nested objects. Returns undefined when a
 * member on the way exists but is not an object (nothing can be added there).
 */
export function addNested(
  root: JsonObject,
  segments: readonly string[],
  value: JsonValue,
): AddOperation | undefined {
  let current: JsonObject = root;
  for (let index = 0; index < segments.length; index++) {
    const next = current[segments[index]];
    if (next === undefined || next === null || index === segments.length - 1) {
      let nested: JsonValue = value;
      for (let rest = segments.length - 1; rest > index; rest--) {
        nested = { [segments[rest]]: nested };
      }
      return { op: "add", path: pointer(segments.slice(0, index + 1)), value: nested };
    }
    if (!isObject(next)) return undefined;
    current = next;
  }
  return undefined;
}

/**
 * `add` operations appending `items` to the array at `segments`: one that
 * creates the array (and any missing parent) when it is absent or null, else
 * one per item. Undefined when the member exists but is not an array.
 */
export function appendAll(
  root: JsonObject,
  segments: readonly string[],
  items: readonly JsonValue[],
): AddOperation[] | undefined {
  let current: JsonValue | undefined = root;
  for (const segment of segments) {
    current = isObject(current) ? current[segment] : undefined;
    if (current === undefined || current === null) {
      const operation = addNested(root, segments, [...items]);
      return operation ? [operation] : undefined;
    }
  }
  if (!Array.isArray(current)) return undefined;
  const path = pointer([...segments, "-"]);
  return items.map((value) => ({ op: "add", path, value }));
}

const encoder = new TextEncoder();
/** Reused for the UTF-8 of every patch that fits (at most 3 bytes per UTF-16 unit). */
const scratch = new Uint8Array(64 * 1024);

/** Base64 of the patch's JSON, as an AdmissionResponse carries it. */
export function encodePatch(operations: readonly PatchOperation[]): string {
  const json = JSON.stringify(operations);
  if (json.length * 3 > scratch.byteLength) return encoder.encode(json).toBase64();
  const { written } = encoder.encodeInto(json, scratch);
  return scratch.subarray(0, written).toBase64();
}
