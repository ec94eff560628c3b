/**
 * JSON error responses shared by both services: every error body is
 * `{"error": "<stable_code>", "message": "<for a human>"}` plus optional details.
 */

export interface ErrorBody {
  error: string;
  message: string;
  [detail: string]: unknown;
}

export function jsonResponse(status: number, body: unknown, headers?: HeadersInit): Response {
  const response = new Response(JSON.stringify(body) + "\n", { status, headers });
  response.headers.set("content-type", "application/json");
  return response;
}

export function errorResponse(
  status: number,
  code: string,
  message: string,
  options: { headers?: HeadersInit; details?: Record<string, unknown> } = {},
): Response {
  const body: ErrorBody = { error: code, message, ...options.details };
  return jsonResponse(status, body, options.headers);
}
