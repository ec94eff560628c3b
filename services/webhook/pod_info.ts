/**
 * What the sidecar reads about its pod while the pod runs: the labels and
 * annotations (instance metadata, custom metadata) and, for VMs that ask for
 * it, Multus's network-status. All come as downward API files, which the
 * kubelet rewrites when they change (environment variables never change).
 * Also the checks whose warnings reach the VM's owner at `kubectl apply`.
 */

import {
  ANNOTATIONS,
  MULTUS,
  NETWORK_CONFIG_FROM_POD_NETWORKS,
  POD_INFO_FILES,
  SIDECAR_ENV,
  SIDECAR_PATHS,
} from "../shared/contract.ts";
import { readCustomMetadata } from "../shared/custom_metadata.ts";
import type { JsonObject } from "./json_patch.ts";
import { quote, readCloudInitSources } from "./opt_in.ts";

export const POD_INFO_VOLUME = "imds-pod-info";

export interface PodInfo {
  env: JsonObject[];
  volume: JsonObject;
  mount: JsonObject;
  warnings: string[];
}

const CIDR = /^[0-9a-fA-F:.]+\/\d{1,3}$/;
const INTERFACE = /^[A-Za-z0-9_.:-]{1,15}$/;

function file(name: string): string {
  return `${SIDECAR_PATHS.podInfoDir}/${name}`;
}

/** The downward API volume, its mount and the variables naming its files, for a pod's annotations. */
export function podInfo(annotations: Record<string, unknown>, volumeName: string): PodInfo {
  const items: JsonObject[] = [
    { path: POD_INFO_FILES.labels, fieldRef: { apiVersion: "v1", fieldPath: "metadata.labels" } },
    {
      path: POD_INFO_FILES.annotations,
      fieldRef: { apiVersion: "v1", fieldPath: "metadata.annotations" },
    },
  ];
  const env: JsonObject[] = [
    { name: SIDECAR_ENV.podLabelsFile, value: file(POD_INFO_FILES.labels) },
    { name: SIDECAR_ENV.podAnnotationsFile, value: file(POD_INFO_FILES.annotations) },
  ];
  const networks = readPodNetworks(annotations);
  if (networks.enabled) {
    items.push({
      path: POD_INFO_FILES.networkStatus,
      fieldRef: {
        apiVersion: "v1",
        fieldPath: `metadata.annotations['${MULTUS.networkStatusAnnotation}']`,
      },
    });
    env.push(
      { name: SIDECAR_ENV.networkConfigFrom, value: NETWORK_CONFIG_FROM_POD_NETWORKS },
      { name: SIDECAR_ENV.networkStatusFile, value: file(POD_INFO_FILES.networkStatus) },
    );
    if (networks.interfaces.length > 0) {
      env.push({ name: SIDECAR_ENV.podInterfaces, value: networks.interfaces.join(",") });
    }
    if (networks.subnets.length > 0) {
      env.push({ name: SIDECAR_ENV.podNetworkSubnets, value: networks.subnets.join(",") });
    }
  }
  return {
    env,
    volume: { name: volumeName, downwardAPI: { items } },
    mount: { name: volumeName, mountPath: SIDECAR_PATHS.podInfoDir, readOnly: true },
    warnings: networks.warnings,
  };
}

interface PodNetworks {
  enabled: boolean;
  /** Pod interfaces KubeVirt asked Multus for (`interface` of each networks entry). */
  interfaces: string[];
  subnets: string[];
  warnings: string[];
}

function readPodNetworks(annotations: Record<string, unknown>): PodNetworks {
  const result: PodNetworks = { enabled: false, interfaces: [], subnets: [], warnings: [] };
  const from = annotations[ANNOTATIONS.networkConfigFrom];
  if (from === undefined || from === "") return result;
  if (from !== NETWORK_CONFIG_FROM_POD_NETWORKS) {
    result.warnings.push(
      `${ANNOTATIONS.networkConfigFrom} is ${
        quote(from)
      }; the only value is "${NETWORK_CONFIG_FROM_POD_NETWORKS}", so no network configuration is generated`,
    );
    return result;
  }
  result.enabled = true;
  const subnets = annotations[ANNOTATIONS.networkConfigSubnets];
  if (typeof subnets === "string" && subnets.trim() !== "") {
    for (const item of subnets.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      if (CIDR.test(item)) result.subnets.push(item);
      else {
        result.warnings.push(
          `${ANNOTATIONS.networkConfigSubnets}: ${
            quote(item)
          } is not a subnet such as 192.168.10.0/24; it was ignored`,
        );
      }
    }
  }
  const networks = annotations[MULTUS.networksAnnotation];
  if (typeof networks === "string" && networks.trim().startsWith("[")) {
    try {
      for (const entry of JSON.parse(networks)) {
        const name = entry?.interface;
        if (typeof name === "string" && INTERFACE.test(name)) result.interfaces.push(name);
      }
    } catch { /* Multus reports a malformed list itself; generation then waits for nothing. */ }
  }
  return result;
}

/**
 * Warnings for the VM's owner about what the sidecar will refuse or ignore:
 * custom metadata over the rules, a network-config generation that a
 * user-written network-config overrides, malformed generation settings.
 */
export function podInfoWarnings(annotations: Record<string, unknown>): string[] {
  const warnings = readCustomMetadata(annotations).problems.map((problem) =>
    `custom metadata refused: ${problem}`
  );
  const networks = readPodNetworks(annotations);
  warnings.push(...networks.warnings);
  if (networks.enabled && readCloudInitSources(annotations).value.networkConfig) {
    warnings.push(
      `${ANNOTATIONS.networkConfigFrom} is ignored while a network-config is set (${ANNOTATIONS.networkConfig}, -secret or -configmap): a network-config you write always wins`,
    );
  }
  return warnings;
}
