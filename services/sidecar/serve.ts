/**
 * The `serve` subcommand: read the configuration, serve the metadata API on
 * IMDS_LISTEN_ADDR until SIGTERM or SIGINT, touching no network configuration.
 */

import { createLogger, type Logger } from "../shared/log.ts";
import { type Env, isConfigError, processEnv } from "../shared/settings.ts";
import { loadSidecarConfig, type SidecarConfig } from "./config.ts";
import { startMetadataServer } from "./server.ts";

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

/** Serves until SIGTERM/SIGINT, then stops accepting and finishes in-flight requests. */
export async function serveUntilSignal(
  config: SidecarConfig,
  log: Logger,
  options: { hostname?: string; port?: number } = {},
): Promise<void> {
  const server = startMetadataServer(config, log, options);
  const stop = (signal: Deno.Signal) => () => {
    log.info("stopping", { signal });
    server.shutdown();
  };
  const onTerm = stop("SIGTERM");
  const onInt = stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  try {
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
  }
  log.info("stopped");
}

export async function serve(args: string[], env: Env = processEnv): Promise<number> {
  const bootLog = createLogger({ component: "sidecar" });
  if (args.length > 0) {
    bootLog.error(
      `serve takes no arguments (configuration is IMDS_* variables), got: ${args.join(" ")}`,
    );
    return EXIT_CONFIG_ERROR;
  }
  const config = loadConfigOrReport(env, bootLog);
  if (config === undefined) return EXIT_CONFIG_ERROR;
  await serveUntilSignal(config, createLogger({ component: "sidecar", level: config.logLevel }));
  return 0;
}
