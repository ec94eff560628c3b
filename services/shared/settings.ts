/**
 * Parsers for configuration values (environment variables, flags, config-file
 * keys). Each failure names the setting, so a bad value stops a service with
 * one message that tells the operator what to fix.
 */

import { LOG_LEVELS, type LogLevel } from "./log.ts";

/** A configuration value that is missing or malformed. `setting` names it. */
export interface ConfigError extends Error {
  name: "ConfigError";
  setting: string;
}

export function configError(setting: string, problem: string): ConfigError {
  const error = new Error(`${setting}: ${problem}`) as ConfigError;
  error.name = "ConfigError";
  error.setting = setting;
  return error;
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof Error && error.name === "ConfigError";
}

export interface HostPort {
  hostname: string;
  port: number;
}

/** Parses `HOST:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(setting: string, value: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(value.trim());
  if (!match) {
    throw configError(setting, `expected HOST:PORT (e.g. 169.254.169.254:80), got "${value}"`);
  }
  const port = Number(match[3]);
  if (port < 0 || port > 65535) {
    throw configError(setting, `port ${port} is outside 0-65535`);
  }
  return { hostname: match[1] ?? match[2], port };
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

export function parseBoolean(setting: string, value: string): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw configError(setting, `expected true or false, got "${value}"`);
}

export interface NumberBounds {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function parseNumber(setting: string, value: string, bounds: NumberBounds = {}): number {
  const trimmed = value.trim();
  const number = trimmed === "" ? NaN : Number(trimmed);
  if (!Number.isFinite(number)) {
    throw configError(setting, `expected a number, got "${value}"`);
  }
  return checkNumber(setting, number, bounds);
}

export function checkNumber(setting: string, number: number, bounds: NumberBounds = {}): number {
  if (bounds.integer && !Number.isInteger(number)) {
    throw configError(setting, `expected a whole number, got ${number}`);
  }
  if (bounds.min !== undefined && number < bounds.min) {
    throw configError(setting, `must be at least ${bounds.min}, got ${number}`);
  }
  if (bounds.max !== undefined && number > bounds.max) {
    throw configError(setting, `must be at most ${bounds.max}, got ${number}`);
  }
  return number;
}

export function parseLogLevel(setting: string, value: string): LogLevel {
  const level = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw configError(setting, `expected one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
}

/** An environment lookup; services take one so tests can pass a plain object. */
export type Env = (name: string) => string | undefined;

export function envFrom(record: Record<string, string>): Env {
  return (name) => record[name];
}

/**
 * The process environment. A variable whose bytes are not UTF-8 (Deno refuses
 * to decode it) is a ConfigError naming the variable, not an uncaught error.
 */
export const processEnv: Env = (name) => {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (!(error instanceof Deno.errors.InvalidData)) throw error;
    throw configError(
      name,
      "is not valid UTF-8 text; it cannot be decoded (was a `$` in it expanded by the kubelet?)",
    );
  }
};

/** A variable's value, with an empty string treated as unset. */
export function optional(env: Env, name: string): string | undefined {
  const value = env(name);
  return value === undefined || value === "" ? undefined : value;
}

export function required(env: Env, name: string): string {
  const value = optional(env, name);
  if (value === undefined) throw configError(name, "is required but not set");
  return value;
}
