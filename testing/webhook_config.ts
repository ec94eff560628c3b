/**
 * The webhook's configuration as its Deployment loads it, from the required
 * flags and a config file, for tests of what the webhook writes.
 */

import { envFrom } from "../services/shared/settings.ts";
import { loadWebhookConfig, type WebhookConfig } from "../services/webhook/config.ts";

/** The configuration from a config file holding `file`, with `image` as the sidecar image. */
export function webhookConfigFrom(
  file: Record<string, unknown> = {},
  image = "ghcr.io/kubevirt-imds/sidecar:test",
): WebhookConfig {
  const loaded = loadWebhookConfig({
    args: ["--tls-cert=/tls/tls.crt", "--tls-key=/tls/tls.key", "--config=/config.yaml"],
    env: envFrom({ IMDS_WEBHOOK_SIDECAR_IMAGE: image }),
    readFile: () => JSON.stringify(file),
  });
  if (loaded.help) throw new Error("unexpected --help");
  return loaded.config;
}
