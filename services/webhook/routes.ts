/**
 * The webhook's HTTP endpoints, independent of the TLS server in front:
 * POST /mutate-pod, POST /mutate-vm, GET /healthz, GET /readyz, GET /metrics.
 * Every review is answered (never denied), logged and counted.
 */

import { errorResponse, jsonResponse } from "../shared/http_errors.ts";
import type { Logger } from "../shared/log.ts";
import {
  type AdmissionRequest,
  admissionResponseBody,
  describeKind,
  parseAdmissionReview,
} from "./admission.ts";
import type { InjectionSettings } from "./config.ts";
import type { Endpoint, Outcome, WebhookMetrics } from "./metrics.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { mutatePod } from "./pod_mutation.ts";
import { mutateVm, type VmKind } from "./vm_mutation.ts";

export interface AppOptions {
  settings: InjectionSettings;
  maxRequestBytes: number;
  metrics: WebhookMetrics;
  log: Logger;
  /** Why the webhook is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
}

/** Returned by AppRequest.readBody when the body exceeds the limit. */
export const TOO_LARGE = Symbol("too large");

/** A request as the endpoints see it, whatever server parsed it. */
export interface AppRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The whole body, or TOO_LARGE as soon as it exceeds `limit` bytes. */
  readBody(limit: number): Promise<Uint8Array | typeof TOO_LARGE>;
}

export interface AppReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Handler = (request: AppRequest) => Promise<AppReply>;

async function reply(response: Response): Promise<AppReply> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  return { status: response.status, headers, body: await response.text() };
}

/** Adapts a fetch-style Request (Deno.serve, tests). */
export function fromWebRequest(request: Request): AppRequest {
  return {
    method: request.method,
    path: new URL(request.url).pathname,
    async readBody(limit) {
      const declared = Number(request.headers.get("content-length") ?? NaN);
      if (declared > limit) {
        await request.body?.cancel().catch(() => {});
        return TOO_LARGE;
      }
      if (!request.body) return new Uint8Array();
      const chunks: Uint8Array[] = [];
      let size = 0;
      const reader = request.body.getReader();
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel().catch(() => {});
          return TOO_LARGE;
        }
        chunks.push(value);
      }
      const body = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.byteLength;
      }
      return body;
    },
  };
}

const VM_KINDS: readonly string[] = ["VirtualMachine", "VirtualMachineInstance"];

function decide(
  endpoint: Endpoint,
  request: AdmissionRequest,
  settings: InjectionSettings,
): Mutation {
  const { kind } = request;
  if (endpoint === "/mutate-pod") {
    if (kind.kind !== "Pod" || kind.group !== "") {
      return unchanged("not a pod", [
        `/mutate-pod handles v1 Pods, got ${describeKind(kind)}; nothing was changed`,
      ]);
    }
    if (request.operation !== "CREATE") return unchanged(`operation ${request.operation}`);
    if (!request.object) {
      return unchanged("no object", ["the request carries no pod object; nothing was changed"]);
    }
    return mutatePod(request.object, settings);
  }
  if (kind.group !== "kubevirt.io" || !VM_KINDS.includes(kind.kind)) {
    return unchanged("not a VM", [
      `/mutate-vm handles kubevirt.io VirtualMachines and VirtualMachineInstances, got ${
        describeKind(kind)
      }; nothing was changed`,
    ]);
  }
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") {
    return unchanged(`operation ${request.operation}`);
  }
  if (!request.object) {
    return unchanged("no object", ["the request carries no VM object; nothing was changed"]);
  }
  return mutateVm(kind.kind as VmKind, request.object, {
    serialInjection: settings.vmSerialInjection,
  });
}

export function createWebhookApp(options: AppOptions): Handler {
  const { metrics, log } = options;

  const sidecarMode = options.settings.sidecar.nativeSidecar ? "native" : "container";

  function finish(
    endpoint: Endpoint,
    started: number,
    outcome: Outcome,
    response: AppReply,
    fields: Record<string, unknown>,
  ): AppReply {
    const elapsed = (performance.now() - started) / 1000;
    metrics.review(endpoint, outcome, elapsed);
    const line = {
      endpoint,
      outcome,
      durationMs: Number((elapsed * 1000).toFixed(3)),
      ...fields,
    };
    if (outcome === "error") log.error("review failed; allowed the object unchanged", line);
    else if (outcome === "malformed" || outcome === "too_large") {
      log.warn("rejected a request that is not a usable AdmissionReview", line);
    } else log.info("review answered", line);
    return response;
  }

  async function review(endpoint: Endpoint, request: AppRequest): Promise<AppReply> {
    const started = performance.now();
    const body = await request.readBody(options.maxRequestBytes);
    if (body === TOO_LARGE) {
      metrics.error(endpoint, "too_large");
      return finish(
        endpoint,
        started,
        "too_large",
        await reply(errorResponse(
          413,
          "request_too_large",
          `the AdmissionReview is larger than maxRequestBytes (${options.maxRequestBytes} bytes)`,
          { headers: { connection: "close" } },
        )),
        {},
      );
    }
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) {
      metrics.error(endpoint, parsed.code);
      return finish(
        endpoint,
        started,
        "malformed",
        await reply(errorResponse(400, parsed.code, parsed.message)),
        { problem: parsed.message },
      );
    }
    const { request: admission } = parsed;
    let mutation: Mutation;
    let outcome: Outcome;
    let problem: string | undefined;
    try {
      mutation = decide(endpoint, admission, options.settings);
      outcome = mutation.operations.length > 0 ? "patched" : "unchanged";
    } catch (error) {
      metrics.error(endpoint, "internal");
      problem = (error as Error).message;
      mutation = unchanged("internal error", [
        `the metadata service webhook failed on this object (${problem}); nothing was changed`,
      ]);
      outcome = "error";
    }
    if (outcome === "patched") {
      if (endpoint === "/mutate-pod") metrics.injection("sidecar", sidecarMode);
      else metrics.injection("serial", admission.kind.kind);
    }
    const warned = mutation.warnings.length > 0;
    if (warned) metrics.warning(endpoint);
    const answer: AppReply = {
      status: 200,
      headers: { "content-type": "application/json" },
      body: admissionResponseBody(admission.uid, mutation),
    };
    const fields: Record<string, unknown> = {
      uid: admission.uid,
      kind: describeKind(admission.kind),
      operation: admission.operation,
      namespace: admission.namespace,
      name: admission.name,
    };
    if (problem !== undefined) fields.problem = problem;
    fields.reason = mutation.reason;
    if (warned) fields.warnings = mutation.warnings;
    return finish(endpoint, started, outcome, answer, fields);
  }

  const routes: Record<
    string,
    { method: string; handle: (request: AppRequest) => Promise<AppReply> }
  > = {
    "/mutate-pod": { method: "POST", handle: (request) => review("/mutate-pod", request) },
    "/mutate-vm": { method: "POST", handle: (request) => review("/mutate-vm", request) },
    "/healthz": { method: "GET", handle: () => reply(jsonResponse(200, { status: "ok" })) },
    "/readyz": {
      method: "GET",
      handle: () => {
        const reason = options.notReadyReason();
        return reply(
          reason === undefined
            ? jsonResponse(200, { status: "ready" })
            : errorResponse(503, "not_ready", reason),
        );
      },
    },
    "/metrics": {
      method: "GET",
      handle: () =>
        Promise.resolve({
          status: 200,
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
          body: metrics.render(),
        }),
    },
  };

  return async (request) => {
    const { path } = request;
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!route) {
      return reply(errorResponse(
        404,
        "not_found",
        `no endpoint at ${path}; endpoints: ${Object.keys(routes).join(", ")}`,
      ));
    }
    const allowed = route.method === "GET" ? ["GET", "HEAD"] : [route.method];
    if (!allowed.includes(request.method)) {
      return reply(errorResponse(
        405,
        "method_not_allowed",
        `${path} accepts ${allowed.join(", ")}, not ${request.method}`,
        { headers: { allow: allowed.join(", ") } },
      ));
    }
    try {
      return await route.handle(request);
    } catch (error) {
      log.error("request failed", { path, error });
      return reply(errorResponse(
        500,
        "internal_error",
        `the webhook failed: ${(error as Error).message}`,
      ));
    }
  };
}
