/**
 * What the `serve` and `run` subcommands share: refusing arguments, reading
 * the configuration once, the logger at the configured level, and waiting for
 * the stop signal.
 */

import { createLogger, type Logger } from "../shared/log.ts";
import { type Env, isConfigError } from "../shared/settings.ts";
import { loadSidecarConfig, type SidecarConfig } from "./config.ts";

export const EXIT_CONFIG_ERROR = 2;

/** Loads the configuration, or logs one line naming the bad variable and returns undefined. */
export function loadConfigOrReport(env: Env, log: Logger): SidecarConfig | undefined {
  try {
    return loadSidecarConfig(env);
  } catch (error) {
    if (!isConfigError(error)) throw error;
    log.error(`invalid configuration: ${error.message}`, { setting: error.setting });
    return undefined;
  }
}

/**
 * The configuration and a logger at its level for subcommand `name`; or, when
 * there are arguments or the configuration is invalid, EXIT_CONFIG_ERROR
 * after one log line saying why.
 */
export function startSubcommand(
  name: string,
  args: string[],
  env: Env,
): { config: SidecarConfig; log: Logger } | number {
  const bootLog = createLogger({ component: "sidecar" });
  if (args.length > 0) {
    bootLog.error(
      `${name} takes no arguments (configuration is IMDS_* variables), got: ${args.join(" ")}`,
    );
    return EXIT_CONFIG_ERROR;
  }
  const config = loadConfigOrReport(env, bootLog);
  if (config === undefined) return EXIT_CONFIG_ERROR;
  return { config, log: createLogger({ component: "sidecar", level: config.logLevel }) };
}

/** The first SIGTERM or SIGINT from now on. */
export interface StopSignal {
  signal: Promise<Deno.Signal>;
  /** Stops listening (a signal after this gets the default action). */
  remove(): void;
}

/** Starts listening for SIGTERM and SIGINT. */
export function listenForStopSignal(): StopSignal {
  const listeners: [Deno.Signal, () => void][] = [];
  const signal = new Promise<Deno.Signal>((resolve) => {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      const listener = () => resolve(name);
      Deno.addSignalListener(name, listener);
      listeners.push([name, listener]);
    }
  });
  return {
    signal,
    remove: () => {
      for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    },
  };
}
