/**
 * Reading what a guest prints: curl's output with the status code appended,
 * and a serial console transcript in which each command is framed by markers
 * so its output and exit code can be found among echoes, prompts and kernel
 * messages.
 */

export interface HttpAnswer {
  status: number;
  body: string;
}

/** The `curl -w '\n%{http_code}'` flags the suite appends to every request. */
export const CURL_STATUS_FLAGS = ["-w", "\\n%{http_code}"] as const;

/** Splits curl output whose last line is the HTTP status code (`-w '\n%{http_code}'`). */
export function parseCurlOutput(output: string): HttpAnswer {
  const text = output.replace(/\r/g, "").replace(/\n+$/, "");
  const newline = text.lastIndexOf("\n");
  const last = newline >= 0 ? text.slice(newline + 1) : text;
  if (!/^\d{3}$/.test(last.trim())) {
    throw new Error(`curl output does not end with a status code: ${JSON.stringify(output)}`);
  }
  const status = Number(last.trim());
  if (status === 0) {
    throw new Error(`curl got no HTTP answer (status 000): ${JSON.stringify(output)}`);
  }
  return { status, body: newline >= 0 ? text.slice(0, newline) : "" };
}

// Colour, cursor and bracketed-paste sequences a guest or its shell may print.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;

/** Removes terminal escape sequences and carriage returns. */
export function cleanTranscript(text: string): string {
  return text.replace(ANSI, "").replace(/\r/g, "");
}

/**
 * The line to type on the console for `command`. The markers are printed by
 * printf, so the echoed command line itself never contains them.
 */
export function framedCommand(command: string, id: string): string {
  return `printf '<<%s>>\\n' begin-${id}; ${command}; printf '<<%s:%s>>\\n' end-${id} "$?"`;
}

export interface FramedOutput {
  output: string;
  exitCode: number;
}

/** Finds the output of the framed command `id`, or undefined while it has not finished. */
export function framedOutput(transcript: string, id: string): FramedOutput | undefined {
  const text = cleanTranscript(transcript);
  const begin = `<<begin-${id}>>\n`;
  const start = text.lastIndexOf(begin);
  if (start < 0) return undefined;
  const endPattern = new RegExp(`<<end-${escapeRegExp(id)}:(\\d+)>>`);
  const rest = text.slice(start + begin.length);
  const end = endPattern.exec(rest);
  if (!end) return undefined;
  return { output: rest.slice(0, end.index), exitCode: Number(end[1]) };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The exit code in the status an exec stream ends with (`Success`, or `NonZeroExitCode`). */
export function exitCodeOf(
  status:
    | { status?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } }
    | undefined,
): number {
  if (status === undefined) throw new Error("the exec stream closed without a status");
  if (status.status === "Success") return 0;
  const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
  const code = Number(cause?.message);
  if (!Number.isInteger(code)) {
    throw new Error(`the command did not run: ${JSON.stringify(status)}`);
  }
  return code;
}
