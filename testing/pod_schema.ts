/**
 * Checks a pod against the Kubernetes API schema: kubernetes-models validates
 * types, enums and required fields; a round trip through
 * @kubernetes/client-node's typed serializer finds fields core/v1 does not
 * have (kubernetes-models accepts unknown fields). Test code only: the
 * webhook itself never loads @kubernetes/client-node.
 */
import { Pod } from "kubernetes-models/v1";
// @ts-types="./client_node_serializer.d.ts"
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";

/** Paths of fields the typed V1Pod model drops (i.e. fields the API does not know). */
export function unknownPodFields(pod: unknown): string[] {
  const typed = ObjectSerializer.deserialize(structuredClone(pod), "V1Pod");
  const back = ObjectSerializer.serialize(typed, "V1Pod");
  const missing: string[] = [];
  const walk = (original: unknown, kept: unknown, path: string) => {
    if (Array.isArray(original)) {
      original.forEach((item, index) =>
        walk(item, Array.isArray(kept) ? kept[index] : undefined, `${path}[${index}]`)
      );
      return;
    }
    if (typeof original !== "object" || original === null) return;
    const keptObject = (typeof kept === "object" && kept !== null ? kept : {}) as Record<
      string,
      unknown
    >;
    for (const [key, value] of Object.entries(original)) {
      const child = `${path}.${key}`;
      if (!(key in keptObject)) missing.push(child);
      // Free-form maps (labels, annotations, resource lists) keep every key.
      else walk(value, keptObject[key], child);
    }
  };
  walk(pod, back, "");
  return missing;
}

/** Schema problems of `pod`; an empty list when it is valid. */
export function podSchemaProblems(pod: unknown): string[] {
  const problems: string[] = [];
  try {
    // deno-lint-ignore no-explicit-any
    new Pod(structuredClone(pod) as any).validate();
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  for (const path of unknownPodFields(pod)) problems.push(`unknown field ${path}`);
  return problems;
}
