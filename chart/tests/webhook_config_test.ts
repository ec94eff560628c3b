/**
 * What the chart renders is what the webhook accepts: the Deployment's
 * arguments and the ConfigMap's config.yaml go through the webhook's own
 * configuration loader for every rendered case, and every value arrives.
 */
import { assertEquals } from "../../testing/assert.ts";
import { GUEST_ROUTE_IDLE_SECONDS, WEBHOOK_ENV } from "../../services/shared/contract.ts";
import { envFrom } from "../../services/shared/settings.ts";
import {
  ANNOTATION_PATTERN,
  loadWebhookConfig,
  MAX_ALLOWED_ANNOTATIONS,
  type WebhookConfig,
} from "../../services/webhook/config.ts";
import { CASES, CHANGED_CONFIG, CHANGED_SETTINGS } from "./cases.ts";
import { type K8sObject, needsHelm, render, type Rendered, template } from "../../testing/helm.ts";

const helm3 = await needsHelm("helm");
if (!helm3.ignore) { for (const values of Object.values(CASES)) template("helm", values); }

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { resourceFieldRef?: { containerName: string; resource: string } };
}

const BINARY_UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };

/**
 * An env value as the kubelet gives it; a resourceFieldRef to `limits.memory` (divisor 1) is the
 * limit in bytes.
 */
function envValue(entry: EnvVar, container: K8sObject): string | undefined {
  const field = entry.valueFrom?.resourceFieldRef;
  if (field === undefined) return entry.value;
  if (field.containerName !== container.name || field.resource !== "limits.memory") {
    throw new Error(`${entry.name}: this test reads only the container's own limits.memory`);
  }
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(String(container.resources.limits.memory));
  if (!match) throw new Error(`unexpected memory limit ${container.resources.limits.memory}`);
  return String(Number(match[1]) * (match[2] ? BINARY_UNITS[match[2]] : 1));
}

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
      (container.env ?? []).map((e: EnvVar) => [e.name, envValue(e, container)]),
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
    const {
      listen: _l,
      tlsCertPath: _c,
      tlsKeyPath: _k,
      configPath: _p,
      memoryLimitBytes: _m,
      ...fromChart
    } = config;
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

Deno.test({
  name: "the webhook reads the memory limit the chart gives it, under the contract's variable",
  ...helm3,
  async fn() {
    const defaults = await render("helm", CASES.defaults);
    const env = defaults.ofKind("Deployment")[0].spec.template.spec.containers[0].env as EnvVar[];
    assertEquals(
      env.filter((entry) => entry.name.startsWith("IMDS_")).map((entry) => entry.name),
      [WEBHOOK_ENV.memoryLimit],
    );
    assertEquals(loadRendered(defaults).memoryLimitBytes, 192 * 2 ** 20);
    const larger = await render("helm", { webhook: { resources: { limits: { memory: "1Gi" } } } });
    assertEquals(loadRendered(larger).memoryLimitBytes, 2 ** 30);
  },
});

Deno.test("the values schema bounds the new sidecar settings exactly as the webhook does", async () => {
  const schema = JSON.parse(
    await Deno.readTextFile(new URL("../values.schema.json", import.meta.url)),
  );
  const sidecar = schema.properties.sidecar.properties;
  assertEquals(
    new RegExp(sidecar.allowedAnnotations.items.pattern).source,
    ANNOTATION_PATTERN.source,
  );
  assertEquals(sidecar.allowedAnnotations.maxItems, MAX_ALLOWED_ANNOTATIONS);
  const idle = sidecar.network.properties.guestRouteIdleSeconds;
  assertEquals([idle.minimum, idle.maximum], [
    GUEST_ROUTE_IDLE_SECONDS.min,
    GUEST_ROUTE_IDLE_SECONDS.max,
  ]);
});
