/**
 * /mutate-pod: adds the metadata sidecar, its token volume and its cloud-init
 * volume to a virt-launcher pod whose VM opted in. Idempotent: a pod that
 * already has a container named imds-server is left alone.
 */

import { KUBEVIRT, SIDECAR_CONTAINER_NAME } from "../shared/contract.ts";
import type { InjectionSettings } from "./config.ts";
import { appendAll, isObject, type JsonObject, type JsonValue } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { quote, readCloudInitSources, readOptIn } from "./opt_in.ts";
import { POD_INFO_VOLUME, podInfo } from "./pod_info.ts";
import { readGuestAccess } from "./guest_access.ts";
import { readGuestProtection } from "./guest_protection.ts";
import { guestAccessAdditions } from "./guest_access_volumes.ts";
import { buildSidecar, freeName, type PodFacts, VOLUME_BASE_NAMES } from "./sidecar_spec.ts";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const UID = /^[0-9a-fA-F][0-9a-fA-F-]{0,63}$/;

function stringMap(value: JsonValue | undefined): Record<string, JsonValue> {
  return isObject(value) ? value : {};
}

function names(list: JsonValue | undefined): string[] {
  const found: string[] = [];
  if (!Array.isArray(list)) return found;
  for (const item of list) {
    if (isObject(item) && typeof item.name === "string") found.push(item.name);
  }
  return found;
}

export function mutatePod(pod: JsonObject, settings: InjectionSettings): Mutation {
  const metadata = pod.metadata;
  if (!isObject(metadata)) {
    return unchanged("no metadata", ["the pod has no metadata; nothing was added"]);
  }
  const labels = stringMap(metadata.labels);
  const annotations = stringMap(metadata.annotations);
  if (labels[KUBEVIRT.launcherLabel] !== KUBEVIRT.launcherLabelValue) {
    return unchanged("not a virt-launcher pod");
  }
  const optIn = readOptIn(annotations);
  if (!optIn.value) {
    return unchanged(
      optIn.warnings.length ? "opt-in annotation not understood" : "not opted in",
      optIn.warnings,
    );
  }
  const spec = pod.spec;
  if (!isObject(spec)) {
    return unchanged("no spec", ["the pod has no spec; the metadata sidecar was not added"]);
  }
  for (const field of ["containers", "initContainers", "volumes"]) {
    if (spec[field] !== undefined && spec[field] !== null && !Array.isArray(spec[field])) {
      return unchanged(`spec.${field} is not a list`, [
        `the pod's spec.${field} is not a list; the metadata sidecar was not added`,
      ]);
    }
  }
  if (
    names(spec.containers).includes(SIDECAR_CONTAINER_NAME) ||
    names(spec.initContainers).includes(SIDECAR_CONTAINER_NAME)
  ) {
    return unchanged("sidecar already present");
  }

  const warnings: string[] = [];
  const facts: PodFacts = { sources: {} };
  const domain = annotations[KUBEVIRT.domainAnnotation];
  if (typeof domain === "string" && DNS_SUBDOMAIN.test(domain)) {
    facts.vmName = domain;
  } else {
    warnings.push(
      domain === undefined
        ? `the pod has no ${KUBEVIRT.domainAnnotation} annotation; the metadata service reports the pod name as the VM name`
        : `${KUBEVIRT.domainAnnotation} is ${
          quote(domain)
        }, not a VM name; the metadata service reports the pod name instead`,
    );
  }
  const createdBy = labels[KUBEVIRT.createdByLabel];
  if (typeof createdBy === "string" && UID.test(createdBy)) facts.vmiUid = createdBy;
  const sources = readCloudInitSources(annotations);
  facts.sources = sources.value;
  warnings.push(...sources.warnings);
  const protection = readGuestProtection(annotations, {
    hopLimit: settings.sidecar.hopLimit,
    sessionsRequired: settings.sidecar.sessionsRequired,
  });
  facts.protection = protection.value;
  warnings.push(...protection.warnings);

  const taken = new Set(names(spec.volumes));
  const token = freeName(VOLUME_BASE_NAMES.token, taken);
  taken.add(token);
  const cloudInit = freeName(VOLUME_BASE_NAMES.cloudInit, taken);
  taken.add(cloudInit);
  const sidecar = buildSidecar(settings, facts, { token, cloudInit });
  const access = readGuestAccess(annotations);
  warnings.push(...access.warnings);
  const additions = guestAccessAdditions(access.value, taken);
  (sidecar.container.env as JsonObject[]).push(...additions.env);
  (sidecar.container.volumeMounts as JsonObject[]).push(...additions.volumeMounts);
  sidecar.volumes.push(...additions.volumes);
  const info = podInfo(annotations, freeName(POD_INFO_VOLUME, taken));
  warnings.push(...info.warnings);
  (sidecar.container.env as JsonObject[]).push(...info.env);
  (sidecar.container.volumeMounts as JsonObject[]).push(info.mount);
  sidecar.volumes.push(info.volume);

  const list = settings.sidecar.nativeSidecar ? "initContainers" : "containers";
  const operations = [
    ...appendAll(pod, ["spec", list], [sidecar.container])!,
    ...appendAll(pod, ["spec", "volumes"], sidecar.volumes)!,
  ];
  return {
    operations,
    warnings,
    reason: settings.sidecar.nativeSidecar
      ? "native sidecar injected"
      : "sidecar container injected",
  };
}
