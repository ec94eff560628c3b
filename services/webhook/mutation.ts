/** What a mutation decided: the patch (empty when nothing changes), warnings and why. */

import type { PatchOperation } from "./json_patch.ts";

export interface Mutation {
  operations: PatchOperation[];
  warnings: string[];
  /** A short phrase for the log: "sidecar injected", "not opted in"… */
  reason: string;
}

export function unchanged(reason: string, warnings: string[] = []): Mutation {
  return { operations: [], warnings, reason };
}
