/**
 * /mutate-vm: points cloud-init in opted-in VMs at the metadata service by
 * setting the DMI serial (spec.domain.firmware.serial) of a VirtualMachine's
 * template or of a bare VirtualMachineInstance, when it is unset or the one
 * KubeVirt generates (nocloud_serial.ts). A serial the user wrote is kept,
 * with a warning saying what cloud-init needs. The imds.kubevirt.io/*
 * annotations are checked here too: warnings on a VM reach the user's
 * kubectl, warnings on its pod do not.
 */

import { ANNOTATIONS } from "../shared/contract.ts";
import { isObject, type JsonObject, type JsonValue } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { nocloudSerial } from "./nocloud_serial.ts";
import { readCloudInitSources, readOptIn } from "./opt_in.ts";

export type VmKind = "VirtualMachine" | "VirtualMachineInstance";

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

  const domainAt = isVm ? ["spec", "template", "spec", "domain"] : ["spec", "domain"];
  // One part per DMI field the webhook writes into the domain.
  const parts = [nocloudSerial(vm, domainAt)];
  return {
    operations: parts.flatMap((part) => part.operations),
    warnings: [...warnings, ...parts.flatMap((part) => part.warnings)],
    reason: parts.map((part) => part.reason).join(", "),
  };
}
