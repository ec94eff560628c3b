/**
 * /mutate-vm: points cloud-init in opted-in VMs at the metadata service by
 * setting the DMI serial (spec.domain.firmware.serial) of a VirtualMachine's
 * template or of a bare VirtualMachineInstance, when it is unset or the one
 * KubeVirt generates (nocloud_serial.ts). A serial the user wrote is kept,
 * with a warning saying what cloud-init needs. The imds.kubevirt.io/*
 * annotations are checked here too: warnings on a VM reach the user's
 * kubectl, warnings on its pod do not.
 */

import { ANNOTATIONS, DATASOURCES, NOCLOUD_SERIAL } from "../shared/contract.ts";
import { accessCredentialSecrets } from "./guest_access.ts";
import { isObject, type JsonObject, type JsonValue, pointer, valueAt } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { nocloudSerial } from "./nocloud_serial.ts";
import { readGuestProtection, readSeedSerial } from "./guest_protection.ts";
import { openstackAssetTag, readDatasource } from "./openstack_asset_tag.ts";
import { readCloudInitSources, readOptIn } from "./opt_in.ts";
import { podInfoWarnings } from "./pod_info.ts";

/** Only the warnings of readGuestProtection are used here; its values come from the pod webhook. */
const NO_DEFAULTS = { hopLimit: 0, sessionsRequired: false };

export type VmKind = "VirtualMachine" | "VirtualMachineInstance";

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
  const annotations = valueAt(vm, annotationsAt);
  const optIn = readOptIn(isObject(annotations) ? annotations : {});
  if (!optIn.value) {
    const warnings = [...optIn.warnings];
    if (
      isVm && optIn.warnings.length === 0 &&
      valueAt(vm, ["metadata", "annotations", ANNOTATIONS.enabled]) === "true"
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
  const datasource = readDatasource(annotations as JsonObject);
  const seedSerial = readSeedSerial(annotations as JsonObject);
  const warnings = [
    ...readCloudInitSources(annotations as JsonObject).warnings,
    ...datasource.warnings,
    ...podInfoWarnings(annotations as JsonObject),
    ...seedSerial.warnings,
    // Checked here for the user's kubectl; the pod webhook applies them.
    ...readGuestProtection(annotations as JsonObject, NO_DEFAULTS).warnings,
  ];
  const specAt = isVm ? ["spec", "template", "spec"] : ["spec"];
  const credentials = accessCredentialsAnnotation(
    annotations as JsonObject,
    annotationsAt,
    valueAt(vm, specAt),
  );
  if (!options.serialInjection) {
    return { ...credentials, reason: "serial injection is off", warnings };
  }

  const domainAt = [...specAt, "domain"];
  // One part per DMI field the webhook writes into the domain: the serial for NoCloud,
  // the chassis asset tag for OpenStack.
  const openstack = datasource.value === DATASOURCES.openstack;
  const parts = [
    openstack ? openstackAssetTag(vm, domainAt) : nocloudSerial(vm, domainAt, seedSerial.value),
    ...(credentials.operations.length > 0 ? [credentials] : []),
  ];
  if (openstack && valueAt(vm, [...domainAt, "firmware", "serial"]) === NOCLOUD_SERIAL) {
    warnings.push(
      `${
        [...domainAt, "firmware", "serial"].join(".")
      } still selects NoCloud, which cloud-init prefers to OpenStack; remove it`,
    );
  }
  return {
    operations: parts.flatMap((part) => part.operations),
    warnings: [...warnings, ...parts.flatMap((part) => part.warnings)],
    reason: parts.map((part) => part.reason).join(", "),
  };
}

/**
 * Records the Secrets of the VM's spec.accessCredentials SSH keys in an
 * annotation that reaches the pod, where the pod webhook mounts them for the
 * sidecar (the pod itself does not say which Secrets those are).
 */
function accessCredentialsAnnotation(
  annotations: JsonObject,
  annotationsAt: string[],
  spec: JsonValue | undefined,
): Mutation {
  const names = accessCredentialSecrets(spec).join(",");
  const current = annotations[ANNOTATIONS.accessCredentialsSecrets];
  if (names === "" || current === names) return unchanged("no access credentials to record");
  return {
    operations: [{
      op: "add",
      path: pointer([...annotationsAt, ANNOTATIONS.accessCredentialsSecrets]),
      value: names,
    }],
    warnings: [],
    reason: "access credential Secrets recorded",
  };
}
