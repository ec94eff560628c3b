/**
 * Structured logging: one JSON object per line on stdout (stderr for errors),
 * with a timestamp, level, component and a message an operator can read.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
/** Each level's place in LOG_LEVELS. */
const LEVEL_RANK = Object.fromEntries(LOG_LEVELS.map((level, rank) => [level, rank])) as Readonly<
  Record<LogLevel, number>
>;

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line it writes. */
  with(fields: LogFields): Logger;
}

/** Where log lines go; tests pass their own sink to capture them. */
export type LogSink = (line: string, level: LogLevel) => void;

const encoder = new TextEncoder();

/**
 * Lines for stdout not written yet. A server logs a line per request, and a
 * write costs more than making the line: the lines of one event-loop task go
 * out in one write at its end (a queued microtask). An error line, which goes
 * to stderr, first writes what is pending, so the two streams keep their
 * order; exit, an uncaught error and a large backlog write it too.
 */
let pending = "";
let flushQueued = false;
const FLUSH_BYTES = 16_384;

export const stdSink: LogSink = (line, level) => {
  if (level === "error") {
    flushStdout();
    writeAll(Deno.stderr, encoder.encode(line + "\n"));
    return;
  }
  pending += line + "\n";
  if (pending.length >= FLUSH_BYTES) flushStdout();
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushStdout);
  }
};

function flushStdout(): void {
  flushQueued = false;
  if (pending === "") return;
  const bytes = encoder.encode(pending);
  pending = "";
  try {
    writeAll(Deno.stdout, bytes);
  } catch {
    // Nothing is left to tell when stdout is gone; the process goes on.
  }
}

for (const event of ["unload", "error", "unhandledrejection"]) {
  globalThis.addEventListener(event, flushStdout);
}

function writeAll(stream: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

export interface LoggerOptions {
  component: string;
  level?: LogLevel;
  sink?: LogSink;
  fields?: LogFields;
}

/** A field value that needs no replacer: no Error can be inside. */
export type PlainValue = string | number | boolean | null | undefined;

/** Writes one line of a fixed message, given its fields. */
export type LineWriter<Name extends string> = (fields: Readonly<Record<Name, PlainValue>>) => void;

/** How each logger made by createLogger makes its LineWriters. */
const lineWriters = new WeakMap<
  Logger,
  (level: LogLevel, msg: string, names: readonly string[]) => LineWriter<string>
>();

/**
 * A writer of lines at `level` with message `msg` and fields named `names`
 * (fields with plain values, named nothing else): the same text as
 * `log[level](msg, fields)`, without checking each line's fields (they were
 * checked once here) — a line per request is the sidecar's commonest work.
 * A logger not made by createLogger is called with the fields.
 */
export function lineWriter<Name extends string>(
  log: Logger,
  level: LogLevel,
  msg: string,
  names: readonly Name[],
): LineWriter<Name> {
  const make = lineWriters.get(log);
  if (make !== undefined) return make(level, msg, names);
  return (fields) => log[level](msg, fields);
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = LEVEL_RANK[options.level ?? "info"];
  const sink = options.sink ?? stdSink;
  const base = { component: options.component, ...options.fields };
  const plainBase = isPlain(base);
  /** Field names that would replace one of the line's own. */
  const ownNames = new Set(["time", "level", "msg", ...Object.keys(base)]);

  /** `"component":…` and the other base fields, for lines made by joining JSON texts. */
  const baseJson = JSON.stringify(base).slice(1, -1);
  const levelJson: Record<LogLevel, string> = {
    debug: `,"level":"debug",${baseJson},"msg":`,
    info: `,"level":"info",${baseJson},"msg":`,
    warn: `,"level":"warn",${baseJson},"msg":`,
    error: `,"level":"error",${baseJson},"msg":`,
  };

  /** The last message and its JSON text: most lines repeat the one before ("request"). */
  let lastMsg = "";
  let lastMsgJson = '""';

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_RANK[level] < threshold) return;
    const time = isoTime(Date.now());
    if (plainBase && joinable(fields, ownNames)) {
      // The same text as the record below, without building the record (a line
      // per request is the sidecar's commonest work).
      const rest = fields === undefined ? "{}" : JSON.stringify(fields);
      if (msg !== lastMsg) {
        lastMsgJson = JSON.stringify(msg);
        lastMsg = msg;
      }
      sink(
        `{"time":"${time}"${levelJson[level]}${lastMsgJson}${
          rest.length > 2 ? `,${rest.slice(1)}` : "}"
        }`,
        level,
      );
      return;
    }
    const record = { time, level, ...base, msg, ...fields };
    sink(JSON.stringify(record, errorReplacer), level);
  };

  const logger: Logger = {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    with: (fields) => createLogger({ ...options, fields: { ...options.fields, ...fields } }),
  };
  lineWriters.set(logger, (level, msg, names) => {
    if (LEVEL_RANK[level] < threshold) return () => {};
    if (!plainBase || names.some((name) => ownNames.has(name))) {
      return (fields) => write(level, msg, fields);
    }
    const head = `${levelJson[level]}${JSON.stringify(msg)}`;
    return (fields) => {
      const rest = JSON.stringify(fields);
      sink(
        `{"time":"${isoTime(Date.now())}"${head}${rest.length > 2 ? `,${rest.slice(1)}` : "}"}`,
        level,
      );
    };
  });
  return logger;
}

/**
 * `new Date(ms).toISOString()` without creating a Date: the first Date object
 * pulls in V8's date machinery, about 2 MB of resident memory in every sidecar.
 */
export function isoTime(ms: number): string {
  if (ms === cachedMs) return cachedTime;
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = isoSecond(second * 1000);
    cachedSecond = second;
  }
  const milli = Math.floor(ms) - second * 1000;
  cachedTime = `${cachedPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
  cachedMs = ms;
  return cachedTime;
}

/** The last isoTime and its text: lines written within one millisecond share it. */
let cachedMs = NaN;
let cachedTime = "";

/** The second of the last isoTime, and its text up to the milliseconds ("2026-12-01T03:58:25."). */
let cachedSecond = NaN;
let cachedPrefix = "";

function isoSecond(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  const msOfDay = ms - days * 86_400_000;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) -
      Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(Math.floor(msOfDay / 3_600_000))}:${
    pad(Math.floor(msOfDay / 60_000) % 60)
  }:${pad(Math.floor(msOfDay / 1000) % 60)}.`;
}

/**
 * True when the fields can follow the line's own as their JSON text: none
 * replaces one of `ownNames`, and none can hold an Error (see isPlain).
 */
function joinable(fields: LogFields | undefined, ownNames: Set<string>): boolean {
  for (const name in fields) {
    if (ownNames.has(name)) return false;
    const value = fields[name];
    if (typeof value === "object" && value !== null && !isStringList(value)) return false;
  }
  return true;
}

/** True when every value is a primitive or a list of strings: no Error can be inside. */
function isPlain(fields: LogFields | undefined): boolean {
  for (const name in fields) {
    const value = fields[name];
    if (typeof value === "object" && value !== null && !isStringList(value)) return false;
  }
  return true;
}

function isStringList(value: object): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== "string") return false;
  return true;
}

/** Errors serialise to their message instead of `{}`. */
function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
