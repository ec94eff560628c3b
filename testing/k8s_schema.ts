/**
 * Checks rendered objects against the Kubernetes and cert-manager API schemas:
 * kubernetes-models validates types, enums and required fields; a round trip
 * through @kubernetes/client-node's serializer finds fields the core API does
 * not have (kubernetes-models accepts unknown fields).
 */
import { ConfigMap, Pod, Service, ServiceAccount } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1";
import {
  Certificate,
  ClusterIssuer,
  Issuer,
} from "@kubernetes-models/cert-manager/cert-manager.io/v1";
// @ts-types="./client_node_serializer.d.ts"
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import type { K8sObject } from "./helm.ts";

type Model = { validate(): void };
// deno-lint-ignore no-explicit-any
type ModelClass = new (data: any) => Model;

type Known = { model: ModelClass; serializerType?: string };

const KNOWN: Record<string, Known> = {
  "v1/ServiceAccount": { model: ServiceAccount, serializerType: "V1ServiceAccount" },
  "v1/ConfigMap": { model: ConfigMap, serializerType: "V1ConfigMap" },
  "v1/Service": { model: Service, serializerType: "V1Service" },
  "v1/Pod": { model: Pod, serializerType: "V1Pod" },
  "apps/v1/Deployment": { model: Deployment, serializerType: "V1Deployment" },
  "policy/v1/PodDisruptionBudget": {
    model: PodDisruptionBudget,
    serializerType: "V1PodDisruptionBudget",
  },
  "networking.k8s.io/v1/NetworkPolicy": {
    model: NetworkPolicy,
    serializerType: "V1NetworkPolicy",
  },
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": {
    model: MutatingWebhookConfiguration,
    serializerType: "V1MutatingWebhookConfiguration",
  },
  "cert-manager.io/v1/Certificate": { model: Certificate },
  "cert-manager.io/v1/Issuer": { model: Issuer },
  "cert-manager.io/v1/ClusterIssuer": { model: ClusterIssuer },
};

/** Kinds validated by hand because no schema package for them is available here. */
const CHECKED_ELSEWHERE = new Set(["monitoring.coreos.com/v1/ServiceMonitor"]);

/**
 * Problems with `object` against its API schema: an empty list when it is
 * valid. Unknown kinds are a problem too, so a new template cannot slip by.
 */
export function schemaProblems(object: K8sObject): string[] {
  const id = `${object.apiVersion}/${object.kind}`;
  const where = `${object.kind}/${object.metadata?.name}`;
  if (CHECKED_ELSEWHERE.has(id)) return [];
  const known = KNOWN[id];
  if (!known) return [`${where}: no schema known for ${id}`];
  const problems: string[] = [];
  try {
    new known.model(structuredClone(object)).validate();
  } catch (error) {
    problems.push(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (known.serializerType) {
    for (const path of unknownFields(object, known.serializerType)) {
      problems.push(`${where}: unknown field ${path}`);
    }
  }
  return problems;
}

/** Paths of fields in `object` that the typed client model of `type` drops. */
export function unknownFields(object: K8sObject, type: string): string[] {
  const typed = ObjectSerializer.deserialize(structuredClone(object), type);
  const back = ObjectSerializer.serialize(typed, type);
  return missingPaths(object, back, "");
}

function missingPaths(original: unknown, back: unknown, path: string): string[] {
  if (Array.isArray(original)) {
    if (!Array.isArray(back)) return [path || "."];
    return original.flatMap((item, i) => missingPaths(item, back[i], `${path}[${i}]`));
  }
  if (original !== null && typeof original === "object") {
    if (back === null || typeof back !== "object") return [path || "."];
    const record = back as Record<string, unknown>;
    return Object.entries(original as Record<string, unknown>).flatMap(([key, value]) =>
      key in record && record[key] !== undefined
        ? missingPaths(value, record[key], `${path}.${key}`)
        : [`${path}.${key}`]
    );
  }
  return [];
}
