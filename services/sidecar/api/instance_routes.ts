/**
 * `/v1/instance` (the instance document, with `?wait=true` long polling) and
 * `/v1/instance/labels/<key>`, `/v1/instance/meta/<key>` (one value as plain
 * text, for shell scripts). All need `Metadata: true`.
 */

import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import { type ChangeWaiter, createChangeWaiter, type WaitLimits } from "./change_waiter.ts";
import type { InstanceState } from "./instance_document.ts";
import { RETRY_AFTER_SECONDS, TEXT_HEADERS } from "./answer_headers.ts";
import type { Route, RouteRequest } from "./routes.ts";

/**
 * The longest a guest may wait for a change. Below the connection reaper's
 * 30-s idle limit, which counts from the start of a connection's last request.
 */
export const MAX_WAIT_SECONDS = 25;

export interface InstanceRoutes {
  routes: [string, Route][];
  /** Ends every waiting request; called when the server stops. */
  stop(): void;
}

export function instanceRoutes(
  read: () => InstanceState,
  limits?: WaitLimits,
): InstanceRoutes {
  const waiter = createChangeWaiter(() => read().etag, limits);
  const value = (map: "labels" | "meta"): Route => ({
    protected: true,
    handle: (_query, _client, request) => {
      const key = decodeKey(request?.path ?? "", `/v1/instance/${map}/`);
      const state = read();
      if ("unavailable" in state) return unavailable(state.unavailable);
      if (map === "meta" && "invalid" in state) return invalid(state.invalid);
      if (key === undefined || !Object.hasOwn(state.document[map], key)) {
        return errorAnswer(
          404,
          "not_found",
          `the VM has no ${map === "labels" ? "label" : "custom metadata"} ${
            JSON.stringify(key ?? "")
          }`,
        );
      }
      return {
        status: 200,
        headers: { ...TEXT_HEADERS, etag: state.etag },
        body: state.document[map][key],
      };
    },
  });
  return {
    routes: [
      ["/v1/instance", {
        protected: true,
        handle: (query, client, request) => documentResponse(read, waiter, query, client, request),
      }],
      ["/v1/instance/labels/*", value("labels")],
      ["/v1/instance/meta/*", value("meta")],
    ],
    stop: () => waiter.stop(),
  };
}

function decodeKey(path: string, prefix: string): string | undefined {
  if (!path.startsWith(prefix)) return undefined;
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    return undefined;
  }
}

function documentResponse(
  read: () => InstanceState,
  waiter: ChangeWaiter,
  query: string,
  client: string | undefined,
  request: RouteRequest | undefined,
): PlainResponse | Promise<PlainResponse> {
  const params = new URLSearchParams(query);
  const wait = params.get("wait");
  if (wait !== null && wait !== "true" && wait !== "false") {
    return badParameter(`wait must be true or false, got ${JSON.stringify(wait)}`);
  }
  const timeoutText = params.get("timeout");
  let timeoutSeconds = MAX_WAIT_SECONDS;
  if (timeoutText !== null) {
    timeoutSeconds = Number(timeoutText);
    if (!/^\d{1,4}$/.test(timeoutText) || timeoutSeconds < 1 || timeoutSeconds > MAX_WAIT_SECONDS) {
      return badParameter(
        `timeout must be a whole number of seconds from 1 to ${MAX_WAIT_SECONDS}, got ${
          JSON.stringify(timeoutText)
        }`,
      );
    }
  }
  const current = read();
  if (wait !== "true") return stateResponse(current);
  const known = request?.headers.get("if-none-match")?.trim() ?? current.etag;
  const waiting = waiter.wait(client ?? "", known, timeoutSeconds * 1000);
  if (typeof waiting === "string") {
    return errorAnswer(429, "too_many_waiting", waiting, {
      headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
    });
  }
  return waiting.then(() => stateResponse(read()));
}

function stateResponse(state: InstanceState): PlainResponse {
  if ("unavailable" in state) return unavailable(state.unavailable);
  if ("invalid" in state) return invalid(state.invalid, state.etag);
  return {
    status: 200,
    headers: { "content-type": "application/json", etag: state.etag, "cache-control": "no-store" },
    body: state.body,
  };
}

function unavailable(reason: string): PlainResponse {
  return errorAnswer(
    503,
    "data_unavailable",
    `the instance metadata cannot be read yet (${reason}); retry shortly`,
    { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
  );
}

function invalid(problems: string[], etag?: string): PlainResponse {
  return errorAnswer(
    422,
    "invalid_custom_metadata",
    `the VM's custom metadata breaks the rules: ${problems.join("; ")}`,
    { details: { problems }, headers: etag ? { etag } : undefined },
  );
}

function badParameter(message: string): PlainResponse {
  return errorAnswer(400, "invalid_parameter", message);
}
