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

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const record = { time: new Date().toISOString(), level, ...base, msg, ...fields };
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

/** Errors serialise to their message instead of `{}`. */
function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
