/**
 * AdmissionReview (admission.k8s.io/v1) in and out: parsing a request body
 * and building the response. A body that is not a v1 AdmissionReview with a
 * request uid cannot be answered with one, so it is rejected (400) with a
 * message; anything else is answered `allowed: true`.
 */

import { encodePatch, isObject, type JsonObject, type JsonValue } from "./json_patch.ts";
import type { Mutation } from "./mutation.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: string;
  namespace: string;
  /** The object's name, or its generateName prefix (pods of VMs have no name yet). */
  name: string;
  /** The object, when the request carries one as a JSON object. */
  object?: JsonObject;
}

const decoder = new TextDecoder();

export type ParsedReview =
  | { ok: true; request: AdmissionRequest }
  | { ok: false; code: string; message: string };

function text(value: JsonValue | undefined): string {
  return typeof value === "string" ? value : "";
}

export function parseAdmissionReview(body: Uint8Array): ParsedReview {
  let review: unknown;
  try {
    review = JSON.parse(decoder.decode(body));
  } catch (error) {
    return {
      ok: false,
      code: "malformed_json",
      message: `the request body is not valid JSON: ${(error as Error).message}`,
    };
  }
  if (!isObject(review)) {
    return {
      ok: false,
      code: "not_admission_review",
      message: "expected an AdmissionReview object",
    };
  }
  if (review.kind !== "AdmissionReview" || review.apiVersion !== ADMISSION_API_VERSION) {
    return {
      ok: false,
      code: "not_admission_review",
      message: `expected kind AdmissionReview, apiVersion ${ADMISSION_API_VERSION}; got kind ${
        JSON.stringify(review.kind ?? null)
      }, apiVersion ${
        JSON.stringify(review.apiVersion ?? null)
      } (set admissionReviewVersions: ["v1"] in the webhook configuration)`,
    };
  }
  const request = review.request;
  if (!isObject(request)) {
    return { ok: false, code: "missing_request", message: "the AdmissionReview has no request" };
  }
  if (typeof request.uid !== "string" || request.uid === "") {
    return { ok: false, code: "missing_uid", message: "the AdmissionReview request has no uid" };
  }
  const kind = isObject(request.kind) ? request.kind : {};
  const object = isObject(request.object) ? request.object : undefined;
  const metadata = object && isObject(object.metadata) ? object.metadata : {};
  const parsed: AdmissionRequest = {
    uid: request.uid,
    kind: { group: text(kind.group), version: text(kind.version), kind: text(kind.kind) },
    operation: text(request.operation),
    namespace: text(request.namespace) || text(metadata.namespace),
    name: text(request.name) || text(metadata.name) || text(metadata.generateName),
  };
  if (object) parsed.object = object;
  return { ok: true, request: parsed };
}

/** `group/version Kind` (`v1 Pod` for the core group). */
export function describeKind(kind: GroupVersionKind): string {
  const groupVersion = kind.group ? `${kind.group}/${kind.version}` : kind.version;
  return `${groupVersion || "(no version)"} ${kind.kind || "(no kind)"}`;
}

const RESPONSE_PREFIX = `{"apiVersion":${
  JSON.stringify(ADMISSION_API_VERSION)
},"kind":"AdmissionReview","response":{"uid":`;

/**
 * `JSON.stringify(admissionResponse(uid, mutation)) + "\n"`, the same text,
 * written without building the object first.
 */
export function admissionResponseBody(uid: string, mutation: Mutation): string {
  let body = RESPONSE_PREFIX + JSON.stringify(uid) + ',"allowed":true';
  if (mutation.operations.length > 0) {
    body += ',"patchType":"JSONPatch","patch":"' + encodePatch(mutation.operations) + '"';
  }
  if (mutation.warnings.length > 0) body += ',"warnings":' + JSON.stringify(mutation.warnings);
  return body + "}}\n";
}

export function admissionResponse(uid: string, mutation: Mutation): JsonObject {
  const response: JsonObject = { uid, allowed: true };
  if (mutation.operations.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = encodePatch(mutation.operations);
  }
  if (mutation.warnings.length > 0) response.warnings = mutation.warnings;
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response };
}
