/**
 * The `serve` subcommand: read the configuration, serve the metadata API on
 * IMDS_LISTEN_ADDR until SIGTERM or SIGINT, touching no network configuration.
 */

import type { Logger } from "../shared/log.ts";
import { type Env, processEnv } from "../shared/settings.ts";
import type { SidecarConfig } from "./config.ts";
import { startMetadataServer } from "./api/server.ts";
import { listenForStopSignal, startSubcommand } from "./subcommand.ts";

/** Serves until SIGTERM/SIGINT, then stops accepting and finishes in-flight requests. */
export async function serveUntilSignal(
  config: SidecarConfig,
  log: Logger,
  options: { hostname?: string; port?: number } = {},
): Promise<void> {
  const server = startMetadataServer(config, log, options);
  const stop = listenForStopSignal();
  stop.signal.then((signal) => {
    log.info("stopping", { signal });
    server.shutdown();
  });
  try {
    await server.finished;
  } finally {
    stop.remove();
  }
  log.info("stopped");
}

export async function serve(args: string[], env: Env = processEnv): Promise<number> {
  const started = startSubcommand("serve", args, env);
  if (typeof started === "number") return started;
  await serveUntilSignal(started.config, started.log);
  return 0;
}
