/**
 * Command-line flags of the webhook. Each flag may also come from an
 * environment variable; a flag given on the command line wins.
 */

import { WEBHOOK_ENV } from "../shared/contract.ts";
import { configError, type Env, optional } from "../shared/settings.ts";

export interface Flags {
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  sidecarImage?: string;
  config?: string;
  memoryLimit?: string;
}

interface FlagSpec {
  field: keyof Flags;
  flag: string;
  env: (typeof WEBHOOK_ENV)[keyof typeof WEBHOOK_ENV];
  help: string;
}

export const FLAGS: readonly FlagSpec[] = [
  {
    field: "listen",
    flag: "--listen",
    env: WEBHOOK_ENV.listen,
    help: "HOST:PORT to serve HTTPS on (default 0.0.0.0:8443)",
  },
  {
    field: "tlsCert",
    flag: "--tls-cert",
    env: WEBHOOK_ENV.tlsCert,
    help: "PEM certificate chain file (reloaded when it changes)",
  },
  {
    field: "tlsKey",
    flag: "--tls-key",
    env: WEBHOOK_ENV.tlsKey,
    help: "PEM private key file (reloaded when it changes)",
  },
  {
    field: "sidecarImage",
    flag: "--sidecar-image",
    env: WEBHOOK_ENV.sidecarImage,
    help: "sidecar image to inject (overrides sidecar.image in the config file)",
  },
  {
    field: "config",
    flag: "--config",
    env: WEBHOOK_ENV.config,
    help: "YAML or JSON configuration file",
  },
  {
    field: "memoryLimit",
    flag: "--memory-limit",
    env: WEBHOOK_ENV.memoryLimit,
    help: "the container's memory limit (bytes, or 192Mi); bounds the reviews in progress",
  },
];

export const USAGE = [
  "Usage: main.ts [--flag value | --flag=value]...",
  ...FLAGS.map((spec) => `  ${spec.flag.padEnd(16)} ${spec.help} (env ${spec.env})`),
  "  --help           print this text",
].join("\n");

export type ParsedArgs = { help: true } | { help: false; flags: Flags };

/** Parses `args` (flags win) and `env`. Throws a ConfigError naming the bad flag. */
export function parseFlags(args: readonly string[], env: Env): ParsedArgs {
  const flags: Flags = {};
  for (const spec of FLAGS) {
    const value = optional(env, spec.env);
    if (value !== undefined) flags[spec.field] = value;
  }
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--help" || arg === "-h") return { help: true };
    if (!arg.startsWith("--")) {
      throw configError(arg, "unexpected argument; every setting is a --flag (see --help)");
    }
    const equals = arg.indexOf("=");
    const name = equals === -1 ? arg : arg.slice(0, equals);
    const spec = FLAGS.find((candidate) => candidate.flag === name);
    if (!spec) {
      throw configError(
        name,
        `unknown flag; known flags: ${FLAGS.map((known) => known.flag).join(", ")}`,
      );
    }
    let value: string | undefined;
    if (equals !== -1) {
      value = arg.slice(equals + 1);
    } else {
      value = args[index + 1];
      if (value === undefined || value.startsWith("--")) {
        throw configError(name, "needs a value");
      }
      index++;
    }
    if (value.trim() === "") throw configError(name, "needs a non-empty value");
    flags[spec.field] = value;
  }
  return { help: false, flags };
}
