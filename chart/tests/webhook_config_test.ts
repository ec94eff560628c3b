/**
 * What the chart renders is what the webhook accepts: the Deployment's
 * arguments and the ConfigMap's config.yaml go through the webhook's own
 * configuration loader for every rendered case, and every value arrives.
 */
import { assertEquals } from "../../testing/assert.ts";
import { envFrom } from "../../services/shared/settings.ts";
import { loadWebhookConfig, type WebhookConfig } from "../../services/webhook/config.ts";
import { CASES, CHANGED_CONFIG, CHANGED_SETTINGS } from "./cases.ts";
import { needsHelm, render, type Rendered, template } from "../../testing/helm.ts";

const helm3 = await needsHelm("helm");
if (!helm3.ignore) { for (const values of Object.values(CASES)) template("helm", values); }

/** Loads the webhook configuration exactly as the rendered Deployment would. */
function loadRendered(r: Rendered): WebhookConfig {
  const deployment = r.ofKind("Deployment")[0];
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const configMount = container.volumeMounts.find((m: { name: string }) => m.name === "config");
  const configVolume = pod.volumes.find((v: { name: string }) => v.name === "config");
  const configMap = r.get("ConfigMap", configVolume.configMap.name);
  const files: Record<string, string> = {};
  for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) {
    files[`${configMount.mountPath}/${key}`] = text;
  }
  const loaded = loadWebhookConfig({
    args: container.args,
    env: envFrom(Object.fromEntries(
      (container.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]),
    )),
    readFile: (path) => {
      if (!(path in files)) throw new Error(`no such file in the pod: ${path}`);
      return files[path];
    },
  });
  if (loaded.help) throw new Error("the rendered arguments ask for --help");
  return loaded.config;
}

Deno.test({
  name: "the webhook's loader accepts the rendered arguments and config file of every case",
  ...helm3,
  async fn() {
    for (const [name, values] of Object.entries(CASES)) {
      const r = await render("helm", values);
      const config = loadRendered(r);
      const port = r.ofKind("Deployment")[0].spec.template.spec.containers[0].ports[0];
      assertEquals(config.listen.port, port.containerPort, `case "${name}": listen port`);
      const tls = r.ofKind("Deployment")[0].spec.template.spec.containers[0].volumeMounts
        .find((m: { name: string }) => m.name === "tls").mountPath;
      assertEquals(config.tlsCertPath, `${tls}/tls.crt`, `case "${name}"`);
      assertEquals(config.tlsKeyPath, `${tls}/tls.key`, `case "${name}"`);
    }
  },
});

Deno.test({
  name: "the webhook loads the chart's defaults as its own defaults",
  ...helm3,
  async fn() {
    const config = loadRendered(await render("helm", CASES.defaults));
    assertEquals(config.sidecar.image, "ghcr.io/kubevirt-imds/sidecar:0.1.0");
    const builtIn = loadWebhookConfig({
      args: ["--tls-cert=c", "--tls-key=k", `--sidecar-image=${config.sidecar.image}`],
      env: envFrom({}),
    });
    if (builtIn.help) throw new Error("unexpected --help");
    const { listen: _l, tlsCertPath: _c, tlsKeyPath: _k, configPath: _p, ...fromChart } = config;
    const { listen: _l2, tlsCertPath: _c2, tlsKeyPath: _k2, ...fromWebhook } = builtIn.config;
    assertEquals(fromChart, fromWebhook);
  },
});

Deno.test({
  name: "every changed value reaches the webhook's loaded configuration",
  ...helm3,
  async fn() {
    const config = loadRendered(await render("helm", CHANGED_SETTINGS));
    const { sidecar, token, vendorData, vmSerialInjection, maxRequestBytes } = config;
    assertEquals(
      { sidecar, token, vendorData, vmSerialInjection, maxRequestBytes },
      CHANGED_CONFIG,
    );
  },
});
