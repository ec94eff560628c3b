/**
 * The test manifests in deploy/test, read as Kubernetes objects (the end-to-end suite applies
 * them; deploy/test checks them offline), and the fields a typed round trip drops. The parser
 * also reads what helm renders (helm.ts).
 */

import { parseAllDocuments } from "yaml";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export const MANIFEST_DIR = new URL("../deploy/test/", import.meta.url);

/** Parses a multi-document YAML file into objects, naming the file and document on errors. */
export function parseManifests(text: string, source: string): KubeObject[] {
  const objects: KubeObject[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      throw new Error(`${source} document ${index + 1}: ${doc.errors[0].message}`);
    }
    const value = doc.toJS();
    if (value === null || value === undefined) return;
    if (
      typeof value !== "object" || typeof value.apiVersion !== "string" ||
      typeof value.kind !== "string" || typeof value.metadata?.name !== "string"
    ) {
      throw new Error(`${source} document ${index + 1} is not a Kubernetes object`);
    }
    objects.push(value as KubeObject);
  });
  return objects;
}

export async function readManifest(file: string): Promise<KubeObject[]> {
  const url = new URL(file, MANIFEST_DIR);
  return parseManifests(await Deno.readTextFile(url), `deploy/test/${file}`);
}

/**
 * Paths present in `original` but missing from `roundTripped` (an object
 * decoded and re-encoded by a typed model drops fields the model does not
 * know, such as misspelt ones).
 */
export function droppedFields(original: unknown, roundTripped: unknown, path = ""): string[] {
  if (Array.isArray(original)) {
    if (!Array.isArray(roundTripped)) return [path || "."];
    return original.flatMap((item, i) => droppedFields(item, roundTripped[i], `${path}[${i}]`));
  }
  if (typeof original === "object" && original !== null) {
    if (typeof roundTripped !== "object" || roundTripped === null) return [path || "."];
    const other = roundTripped as Record<string, unknown>;
    return Object.entries(original).flatMap(([key, value]) =>
      other[key] === undefined
        ? [`${path}.${key}`]
        : droppedFields(value, other[key], `${path}.${key}`)
    );
  }
  return [];
}
