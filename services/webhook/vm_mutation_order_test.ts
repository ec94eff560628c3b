/**
 * The API server calls mutating webhook configurations sorted by name, and
 * KubeVirt's own (`virt-api-mutator`) writes a random DMI serial into every
 * VirtualMachine created without one. These tests run the real webhook over
 * HTTPS in an admission chain built from the chart's rendered
 * MutatingWebhookConfiguration and a stand-in for KubeVirt's VM mutator, with
 * release names that sort before and after KubeVirt's: the opted-in VM ends
 * with what cloud-init needs either way, and so does a VM that opts in after
 * it was created.
 */

import jsonpatch from "fast-json-patch";
import { assert, assertEquals } from "../../testing/assert.ts";
import { needsHelm, render } from "../../testing/helm.ts";
import { makeCertificate, secretVolume } from "../../testing/webhook_certificates.ts";
import { createLogger } from "../shared/log.ts";
import {
  ANNOTATIONS,
  DATASOURCES,
  NOCLOUD_SERIAL,
  OPENSTACK_ASSET_TAG,
} from "../shared/contract.ts";
import { envFrom } from "../shared/settings.ts";
import { loadWebhookConfig } from "./config.ts";
import { isObject, type JsonObject } from "./json_patch.ts";
import { startWebhook } from "./webhook.ts";

type Operation = "CREATE" | "UPDATE";
type Patch = jsonpatch.Operation[];

/** One mutating webhook as the API server sees it. */
interface ChainedWebhook {
  configuration: string;
  name: string;
  reinvocationPolicy: "Never" | "IfNeeded";
  review(operation: Operation, object: JsonObject, oldObject?: JsonObject): Promise<Patch>;
}

/**
 * A stand-in for KubeVirt's VM mutator (virt-api, vm-mutator.go): on create,
 * `setFirmwareDefaultsIfEmpty` fills firmware.uuid and firmware.serial with
 * random UUIDs; the patch replaces the whole spec, as KubeVirt's does.
 */
const KUBEVIRT_VM_MUTATOR: ChainedWebhook = {
  configuration: "virt-api-mutator",
  name: "virtualmachines-mutator.kubevirt.io",
  reinvocationPolicy: "Never",
  review(operation, object) {
    if (operation !== "CREATE") return Promise.resolve([]);
    const spec = structuredClone(object.spec) as {
      template: { spec: { domain: { firmware?: { uuid?: string; serial?: string } } } };
    };
    const firmware = spec.template.spec.domain.firmware ?? {};
    if (!firmware.uuid) firmware.uuid = crypto.randomUUID();
    if (!firmware.serial) firmware.serial = crypto.randomUUID();
    spec.template.spec.domain.firmware = firmware;
    return Promise.resolve([{ op: "replace", path: "/spec", value: spec }]);
  },
};

/**
 * Admission as the API server runs it: webhooks sorted by configuration name,
 * then webhook name; each patch applied before the next call; a webhook with
 * reinvocationPolicy IfNeeded called once more when a later one changed the
 * object after it.
 */
async function admit(
  webhooks: ChainedWebhook[],
  operation: Operation,
  object: JsonObject,
  oldObject?: JsonObject,
): Promise<{ object: JsonObject; calls: string[] }> {
  const ordered = [...webhooks].sort((a, b) =>
    a.configuration.localeCompare(b.configuration, "en") || a.name.localeCompare(b.name, "en")
  );
  const calls: string[] = [];
  let current = structuredClone(object);
  const seen = new Map<ChainedWebhook, string>();
  const call = async (webhook: ChainedWebhook) => {
    calls.push(webhook.configuration);
    const patch = await webhook.review(operation, current, oldObject);
    current = jsonpatch.applyPatch(structuredClone(current), patch, true, false)
      .newDocument as JsonObject;
    seen.set(webhook, JSON.stringify(current));
  };
  for (const webhook of ordered) await call(webhook);
  for (const webhook of ordered) {
    if (
      webhook.reinvocationPolicy === "IfNeeded" && seen.get(webhook) !== JSON.stringify(current)
    ) {
      await call(webhook);
    }
  }
  return { object: current, calls };
}

function decodePatch(patch: string | undefined): Patch {
  if (patch === undefined) return [];
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(patch), (c) => c.charCodeAt(0))));
}

/** The webhook over HTTPS, chained as the chart's VM MutatingWebhookConfiguration says. */
async function startChainedWebhook(fullnameOverride: string) {
  const rendered = await render("helm", { fullnameOverride });
  const configuration = rendered.ofKind("MutatingWebhookConfiguration").find((c) =>
    JSON.stringify(c).includes('"virtualmachines"')
  ) as unknown as {
    metadata: { name: string };
    webhooks: Array<{
      name: string;
      reinvocationPolicy: "Never" | "IfNeeded";
      clientConfig: { service: { path: string } };
    }>;
  };
  assert(configuration, "the chart renders a MutatingWebhookConfiguration for VMs");
  const [declared] = configuration.webhooks;
  const certificate = await makeCertificate();
  const volume = await secretVolume(certificate);
  const loaded = loadWebhookConfig({
    args: [
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      volume.certPath,
      "--tls-key",
      volume.keyPath,
      "--sidecar-image",
      "ghcr.io/kubevirt-imds/sidecar:0.1.0",
    ],
    env: envFrom({}),
    readFile: () => "{}",
  });
  if (loaded.help) throw new Error("unexpected help");
  const log = createLogger({ component: "webhook", level: "error", sink: () => {} });
  const server = await startWebhook(loaded.config, log);
  const client = Deno.createHttpClient({ caCerts: [certificate.caPem] });
  let reviews = 0;
  const webhook: ChainedWebhook = {
    configuration: configuration.metadata.name,
    name: declared.name,
    reinvocationPolicy: declared.reinvocationPolicy,
    async review(operation, object, oldObject) {
      const response = await fetch(
        `https://127.0.0.1:${server.addr.port}${declared.clientConfig.service.path}?timeout=10s`,
        {
          method: "POST",
          client,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            apiVersion: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            request: {
              uid: `order-${++reviews}`,
              kind: { group: "kubevirt.io", version: "v1", kind: "VirtualMachine" },
              resource: { group: "kubevirt.io", version: "v1", resource: "virtualmachines" },
              operation,
              namespace: "default",
              name: (object.metadata as JsonObject).name,
              userInfo: { username: "alice" },
              object,
              oldObject: oldObject ?? null,
              dryRun: false,
            },
          }),
        },
      );
      assertEquals(response.status, 200);
      const body = await response.json();
      assertEquals(body.response.allowed, true);
      return decodePatch(body.response.patch);
    },
  };
  return {
    webhook,
    async close() {
      client.close();
      await server.shutdown({ graceMs: 1000 });
      await volume.remove();
    },
  };
}

function virtualMachine(annotations: Record<string, string>): JsonObject {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: { name: "vm-1", namespace: "default" },
    spec: {
      runStrategy: "Always",
      template: {
        metadata: { annotations },
        spec: {
          domain: { devices: {}, resources: { requests: { memory: "128Mi" } } },
        },
      },
    },
  };
}

function domainOf(vm: JsonObject): JsonObject {
  const domain = ((vm.spec as JsonObject).template as JsonObject).spec as JsonObject;
  assert(isObject(domain.domain));
  return domain.domain;
}

/**
 * What an opted-in VM must end with, per datasource. Each outcome holds
 * whichever webhook runs first.
 */
const OUTCOMES: Array<{
  datasource: string;
  annotations: Record<string, string>;
  check(domain: JsonObject): void;
}> = [
  {
    datasource: "NoCloud",
    annotations: { [ANNOTATIONS.enabled]: "true" },
    check(domain) {
      assertEquals((domain.firmware as JsonObject).serial, NOCLOUD_SERIAL);
    },
  },
  {
    datasource: "OpenStack",
    annotations: {
      [ANNOTATIONS.enabled]: "true",
      [ANNOTATIONS.datasource]: DATASOURCES.openstack,
    },
    check(domain) {
      assertEquals((domain.chassis as JsonObject).asset, OPENSTACK_ASSET_TAG);
      // KubeVirt's random serial stays: it does not select NoCloud.
      assert(/^[0-9a-f-]{36}$/.test(String((domain.firmware as JsonObject).serial)));
    },
  },
];

// Release names whose VM webhook configuration sorts before and after `virt-api-mutator`.
const RELEASES = [
  { fullnameOverride: "kubevirt-imds", first: "kubevirt-imds-vms" },
  { fullnameOverride: "zz-imds", first: "virt-api-mutator" },
];

const helm = await needsHelm("helm");

/** Runs `body` with this release's VM webhook chained with KubeVirt's, then stops the webhook. */
async function withChain(
  fullnameOverride: string,
  body: (chain: ChainedWebhook[]) => Promise<void>,
): Promise<void> {
  const chained = await startChainedWebhook(fullnameOverride);
  try {
    await body([chained.webhook, KUBEVIRT_VM_MUTATOR]);
  } finally {
    await chained.close();
  }
}

for (const release of RELEASES) {
  Deno.test({
    name: `order: with webhook configuration ${release.fullnameOverride}-vms, ${release.first} ` +
      "runs first and the opted-in VM still ends with its datasource",
    ...helm,
    async fn() {
      await withChain(release.fullnameOverride, async (chain) => {
        for (const outcome of OUTCOMES) {
          const created = await admit(chain, "CREATE", virtualMachine(outcome.annotations));
          assertEquals(created.calls[0], release.first, "the order under test");
          outcome.check(domainOf(created.object));
          // KubeVirt's own defaults survive beside it.
          assert(
            /^[0-9a-f-]{36}$/.test(String((domainOf(created.object).firmware as JsonObject).uuid)),
          );
          // An update (the VM controller's, or the user's) changes nothing more.
          const updated = await admit(chain, "UPDATE", created.object, created.object);
          assertEquals(updated.object, created.object, outcome.datasource);
        }
      });
    },
  });

  Deno.test({
    name: `order: with ${release.fullnameOverride}-vms, a VM created without the opt-in ` +
      "gets its datasource when it opts in later",
    ...helm,
    async fn() {
      await withChain(release.fullnameOverride, async (chain) => {
        for (const outcome of OUTCOMES) {
          const created = await admit(chain, "CREATE", virtualMachine({}));
          const serial = (domainOf(created.object).firmware as JsonObject).serial;
          assert(/^[0-9a-f-]{36}$/.test(String(serial)), `KubeVirt's serial, got ${serial}`);
          const optedIn = structuredClone(created.object);
          ((optedIn.spec as JsonObject).template as { metadata: JsonObject }).metadata
            .annotations = outcome.annotations;
          const updated = await admit(chain, "UPDATE", optedIn, created.object);
          outcome.check(domainOf(updated.object));
        }
      });
    },
  });
}
