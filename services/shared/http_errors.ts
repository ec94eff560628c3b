/**
 * JSON error responses shared by both services: every error body is
 * `{"error": "<stable_code>", "message": "<for a human>"}` plus optional details.
 * Both build them as plain values (PlainResponse); the webhook's routes also take them as
 * Response objects (errorResponse, jsonResponse).
 */

export interface ErrorBody {
  error: string;
  message: string;
  [detail: string]: unknown;
}

/** A response as plain values: no Response or Headers object to build. */
export interface PlainResponse {
  status: number;
  /** By lower-case name. */
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** A JSON answer: its body is the JSON text. */
export type JsonAnswer = PlainResponse & { body: string };

export function jsonAnswer(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): JsonAnswer {
  return {
    status,
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body) + "\n",
  };
}

export function errorAnswer(
  status: number,
  code: string,
  message: string,
  options: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
): JsonAnswer {
  const body: ErrorBody = { error: code, message, ...options.details };
  return jsonAnswer(status, body, options.headers);
}

function toResponse(plain: JsonAnswer): Response {
  return new Response(plain.body, { status: plain.status, headers: plain.headers });
}

export function jsonResponse(
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): Response {
  return toResponse(jsonAnswer(status, body, headers));
}

export function errorResponse(
  status: number,
  code: string,
  message: string,
  options: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
): Response {
  return toResponse(errorAnswer(status, code, message, options));
}
