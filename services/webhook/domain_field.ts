/**
 * Setting one field of a VM's domain (the DMI serial, the chassis asset tag)
 * unless the user has set it: an unset field (absent, null or "") is added,
 * creating the objects on the way; a set one is left to the caller to judge.
 */

import { addNested, type JsonObject, type JsonValue, valueAt } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";

export interface DomainField {
  /** The field's path below the domain, e.g. ["firmware", "serial"]. */
  at: readonly string[];
  /** The value to set when the field is unset. */
  value: string;
  /** The mutation's reason when the value is set, and when a member on the way is not an object. */
  reasons: { set: string; blocked: string };
}

/** Where the field stands in the object being mutated, for the caller's judgement of a set value. */
export interface SetField {
  /** The current value (neither absent, null nor ""). */
  current: JsonValue;
  /** The full path of the field in the object. */
  at: readonly string[];
  /** The field as the user writes it, e.g. "spec.template.spec.domain.firmware.serial". */
  name: string;
}

/**
 * Sets `field` in the domain at `domainAt` (a VM's `spec.template.spec.domain` or a VMI's
 * `spec.domain`) when it is unset; otherwise answers what `whenSet` decides.
 */
export function setDomainField(
  vm: JsonObject,
  domainAt: readonly string[],
  field: DomainField,
  whenSet: (set: SetField) => Mutation,
): Mutation {
  const at = [...domainAt, ...field.at];
  const name = at.join(".");
  const current = valueAt(vm, at);
  if (current !== undefined && current !== null && current !== "") {
    return whenSet({ current, at, name });
  }
  const operation = addNested(vm, at, field.value);
  if (!operation) {
    return unchanged(field.reasons.blocked, [
      `${name} could not be set: a field on the way is not an object`,
    ]);
  }
  return { operations: [operation], warnings: [], reason: field.reasons.set };
}
