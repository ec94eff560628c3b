/**
 * Structured logging: one JSON object per line on stdout (stderr for errors),
 * with a timestamp, level, component and a message an operator can read.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

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

export const stdSink: LogSink = (line, level) => {
  const bytes = encoder.encode(line + "\n");
  if (level === "error") Deno.stderr.writeSync(bytes);
  else Deno.stdout.writeSync(bytes);
};

export interface LoggerOptions {
  component: string;
  level?: LogLevel;
  sink?: LogSink;
  fields?: LogFields;
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
  const sink = options.sink ?? stdSink;
  const base = { component: options.component, ...options.fields };
  const plainBase = isPlain(base);

  /** `"component":…` and the other base fields, for lines made by joining JSON texts. */
  const baseJson = JSON.stringify(base).slice(1, -1);
  const levelJson: Record<LogLevel, string> = {
    debug: `,"level":"debug",${baseJson},"msg":`,
    info: `,"level":"info",${baseJson},"msg":`,
    warn: `,"level":"warn",${baseJson},"msg":`,
    error: `,"level":"error",${baseJson},"msg":`,
  };

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const time = isoTime(Date.now());
    if (plainBase && isPlain(fields) && !overlaps(fields, base)) {
      // The same text as the record below, without building the record (a line
      // per request is the sidecar's commonest work).
      const rest = fields === undefined ? "{}" : JSON.stringify(fields);
      sink(
        `{"time":"${time}"${levelJson[level]}${JSON.stringify(msg)}${
          rest.length > 2 ? `,${rest.slice(1)}` : "}"
        }`,
        level,
      );
      return;
    }
    const record = { time, level, ...base, msg, ...fields };
    sink(JSON.stringify(record, errorReplacer), level);
  };

  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    with: (fields) => createLogger({ ...options, fields: { ...options.fields, ...fields } }),
  };
}

/**
 * `new Date(ms).toISOString()` without creating a Date: the first Date object
 * pulls in V8's date machinery, about 2 MB of resident memory in every sidecar.
 */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = isoSecond(second * 1000);
    cachedSecond = second;
  }
  const milli = Math.floor(ms) - second * 1000;
  return `${cachedPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

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

/** Fields that would replace a field of the line's own (time, level, msg or a base field). */
function overlaps(fields: LogFields | undefined, base: LogFields): boolean {
  for (const name in fields) {
    if (name === "time" || name === "level" || name === "msg" || name in base) return true;
  }
  return false;
}

/** True when every value is a primitive or a list of strings: no Error can be inside. */
function isPlain(fields: LogFields | undefined): boolean {
  for (const name in fields) {
    const value = fields[name];
    if (typeof value === "object" && value !== null) {
      if (!Array.isArray(value)) return false;
      for (const item of value) if (typeof item !== "string") return false;
    }
  }
  return true;
}

/** Errors serialise to their message instead of `{}`. */
function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
