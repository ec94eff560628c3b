/**
 * The kubevirt-imds admission webhook.
 *
 *   deno run -A services/webhook/main.ts --listen 0.0.0.0:8443 \
 *     --tls-cert /etc/imds-webhook/tls/tls.crt --tls-key /etc/imds-webhook/tls/tls.key \
 *     --sidecar-image ghcr.io/kubevirt-imds/sidecar:0.1.0 \
 *     --config /etc/imds-webhook/config/config.yaml
 *
 * A bad setting stops it at once with one line naming the setting (exit 2).
 */

import { createLogger } from "../shared/log.ts";
import { isConfigError, processEnv } from "../shared/settings.ts";
import { loadWebhookConfig } from "./config.ts";
import { USAGE } from "./flags.ts";
import { startWebhook } from "./webhook.ts";

/** How long the webhook keeps serving after SIGTERM while it reports not ready. */
const DRAIN_MS = 2000;

async function main(): Promise<number> {
  const log = createLogger({ component: "webhook" });
  let webhook;
  let listen = "";
  try {
    const loaded = loadWebhookConfig({ args: Deno.args, env: processEnv });
    if (loaded.help) {
      console.log(USAGE);
      return 0;
    }
    listen = `${loaded.config.listen.hostname}:${loaded.config.listen.port}`;
    webhook = await startWebhook(loaded.config, log);
  } catch (error) {
    if (isConfigError(error)) {
      log.error(`configuration error: ${error.message}`, { setting: error.setting });
      console.error(`imds-webhook: ${error.message}`);
      return 2;
    }
    if (
      error instanceof Deno.errors.AddrInUse || (error as { code?: string }).code === "EADDRINUSE"
    ) {
      const message = `--listen: ${listen} is already in use`;
      log.error(message, { setting: "--listen" });
      console.error(`imds-webhook: ${message}`);
      return 2;
    }
    log.error("the webhook could not start", { error });
    return 1;
  }
  const stop = new Promise<string>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(signal, () => resolve(signal));
    }
  });
  const signal = await stop;
  log.info("stopping: reporting not ready, then finishing requests in flight", {
    signal,
    drainSeconds: DRAIN_MS / 1000,
  });
  await webhook.shutdown({ drainMs: DRAIN_MS });
  log.info("stopped");
  return 0;
}

Deno.exit(await main());
