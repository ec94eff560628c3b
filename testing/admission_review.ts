/**
 * The AdmissionReview (admission.k8s.io/v1) the API server sends a mutating
 * webhook when a pod is created, for tests and benchmarks that play the API
 * server.
 */

import { isObject, type JsonObject, type JsonValue } from "../services/webhook/json_patch.ts";

/** A review of the creation of `pod`, in the pod's namespace ("default" when it names none). */
export function podCreateReview(
  pod: JsonValue,
  options: { uid: string; userInfo?: { username: string } },
): JsonObject {
  const metadata = isObject(pod) ? pod.metadata : undefined;
  const namespace = isObject(metadata) ? metadata.namespace : undefined;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: "CREATE",
      namespace: namespace ?? "default",
      ...(options.userInfo ? { userInfo: options.userInfo } : {}),
      object: pod,
    },
  };
}
