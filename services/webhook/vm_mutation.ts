/**
 * /mutate-vm: points cloud-init in opted-in VMs at the metadata service by
 * setting the DMI serial (spec.domain.firmware.serial) of a VirtualMachine's
 * template or of a bare VirtualMachineInstance, when it is unset. A serial the
 * user wrote is kept, with a warning saying what cloud-init needs. The
 * imds.kubevirt.io/* annotations are checked here too: warnings on a VM
 * reach the user's kubectl, warnings on its pod do not.
 */

import { ANNOTATIONS, METADATA_ADDRESS, NOCLOUD_SERIAL } from "../shared/contract.ts";
import { addNested, isObject, type JsonObject, type JsonValue } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { quote, readCloudInitSources, readOptIn } from "./opt_in.ts";

export type VmKind = "VirtualMachine" | "VirtualMachineInstance";

/** The serial without `;dsmode=net`, which cloud-init 22.x fetches and then discards. */
const SERIAL_WITHOUT_DSMODE = `ds=nocloud;s=http://${METADATA_ADDRESS}/v1/`;

function child(value: JsonValue | undefined, ...path: string[]): JsonValue | undefined {
  let current = value;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return current;
}

export function mutateVm(
  kind: VmKind,
  vm: JsonObject,
  options: { serialInjection: boolean },
): Mutation {
  const isVm = kind === "VirtualMachine";
  const annotationsAt = isVm ? ["spec", "template", "metadata", "annotations"] : [
    "metadata",
    "annotations",
  ];
  const annotations = child(vm, ...annotationsAt);
  const optIn = readOptIn(isObject(annotations) ? annotations : {});
  if (!optIn.value) {
    const warnings = [...optIn.warnings];
    if (
      isVm && optIn.warnings.length === 0 &&
      child(vm, "metadata", "annotations", ANNOTATIONS.enabled) === "true"
    ) {
      warnings.push(
        `${ANNOTATIONS.enabled} is on the VirtualMachine's metadata, where it has no effect; put it on spec.template.metadata.annotations`,
      );
    }
    return unchanged(
      warnings.length ? "opt-in annotation not understood" : "not opted in",
      warnings,
    );
  }
  const warnings = readCloudInitSources(annotations as JsonObject).warnings;
  if (!options.serialInjection) return unchanged("serial injection is off", warnings);

  const serialAt = isVm
    ? ["spec", "template", "spec", "domain", "firmware", "serial"]
    : ["spec", "domain", "firmware", "serial"];
  const field = serialAt.join(".");
  const serial = child(vm, ...serialAt);
  if (serial === undefined || serial === null || serial === "") {
    const operation = addNested(vm, serialAt, NOCLOUD_SERIAL);
    if (!operation) {
      warnings.push(`${field} could not be set: a field on the way is not an object`);
      return unchanged("serial path blocked", warnings);
    }
    return { operations: [operation], warnings, reason: "serial set" };
  }
  if (serial === NOCLOUD_SERIAL) return unchanged("serial already set", warnings);
  if (serial === SERIAL_WITHOUT_DSMODE) {
    warnings.push(
      `${field} is kept as written; add ";dsmode=net" to it, or cloud-init 22.x fetches the metadata and discards it`,
    );
  } else {
    warnings.push(
      `${field} is kept as ${
        quote(serial)
      }; cloud-init uses the metadata service only with "${NOCLOUD_SERIAL}"`,
    );
  }
  return unchanged("user's serial kept", warnings);
}
