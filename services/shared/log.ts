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

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const record = { time: isoTime(Date.now()), level, ...base, msg, ...fields };
    // The replacer only matters when an Error may be inside; without one,
    // JSON.stringify takes its much faster path and writes the same text.
    const replacer = plainBase && isPlain(fields) ? undefined : errorReplacer;
    sink(JSON.stringify(record, replacer), level);
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
  }:${pad(Math.floor(msOfDay / 1000) % 60)}.${pad(Math.floor(msOfDay) % 1000, 3)}Z`;
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
