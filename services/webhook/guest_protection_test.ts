/**
 * The per-VM hop limit, session rule and seed address: read from the annotations, written
 * into the sidecar's environment by the pod webhook and into the NoCloud serial by the VM
 * webhook, and obeyed by the real sidecar the kubelet starts from the patch.
 */
import { assertEquals, assertMatch } from "../../testing/assert.ts";
import { webhookConfigFrom } from "../../testing/webhook_config.ts";
import {
  applyPatch,
  canMaterialise,
  materialise,
  metadataRequest,
  startSidecarServe,
  webhookPatch,
} from "../../testing/kubelet.ts";
import {
  ANNOTATIONS,
  METADATA_ADDRESS,
  NOCLOUD_SERIAL,
  NOCLOUD_SERIAL_V6,
  SESSION_HEADER,
  SESSION_PATH,
  SESSION_TTL_HEADER,
  SIDECAR_CONTAINER_NAME,
} from "../shared/contract.ts";
import type { WebhookConfig } from "./config.ts";
import { readGuestProtection, readSeedSerial } from "./guest_protection.ts";
import type { JsonObject } from "./json_patch.ts";
import { mutatePod } from "./pod_mutation.ts";
import { mutateVm } from "./vm_mutation.ts";

const ROOT = new URL("../../", import.meta.url);
const DEFAULTS = { hopLimit: 1, sessionsRequired: false };

async function fixture(name: string): Promise<JsonObject> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`services/webhook/fixtures/${name}.json`, ROOT)),
  );
}

function sidecarEnv(pod: JsonObject, config: WebhookConfig): Record<string, string> {
  const patch = mutatePod(pod, config);
  const container = (patch.operations as unknown as JsonObject[]).find((operation) =>
    (operation.value as JsonObject | undefined)?.name === SIDECAR_CONTAINER_NAME
  )!.value as JsonObject;
  return Object.fromEntries(
    (container.env as JsonObject[]).map((entry) => [entry.name, entry.value]),
  ) as Record<string, string>;
}

Deno.test("annotations override the chart's hop limit and session rule; odd values warn", () => {
  assertEquals(readGuestProtection({}, DEFAULTS), { value: DEFAULTS, warnings: [] });
  assertEquals(
    readGuestProtection({
      [ANNOTATIONS.hopLimit]: "0",
      [ANNOTATIONS.sessionsRequired]: "true",
    }, DEFAULTS).value,
    { hopLimit: 0, sessionsRequired: true },
  );
  assertEquals(
    readGuestProtection({ [ANNOTATIONS.hopLimit]: "255" }, DEFAULTS).value.hopLimit,
    255,
  );
  for (const bad of ["256", "-1", "01", "1.5", "one", "", " 2"]) {
    const reading = readGuestProtection({ [ANNOTATIONS.hopLimit]: bad }, DEFAULTS);
    assertEquals(reading.value, DEFAULTS, bad);
    assertMatch(
      reading.warnings[0],
      /hop-limit is .*; expected a whole number from 0 \(off\) to 255, so the chart's sidecar\.hopLimit is used/,
    );
  }
  const yes = readGuestProtection({ [ANNOTATIONS.sessionsRequired]: "yes" }, DEFAULTS);
  assertEquals(yes.value, DEFAULTS);
  assertMatch(yes.warnings[0], /sessions-required is "yes"; expected "true" or "false"/);
});

Deno.test("the pod webhook writes the VM's hop limit and session rule, else the chart's", async () => {
  const pod = await fixture("pod_masquerade");
  const chart = webhookConfigFrom({ sidecar: { hopLimit: 2, sessionsRequired: true } });
  const fromChart = sidecarEnv(structuredClone(pod), chart);
  assertEquals([fromChart.IMDS_HOP_LIMIT, fromChart.IMDS_SESSIONS_REQUIRED], ["2", "true"]);
  pod.metadata = {
    ...(pod.metadata as JsonObject),
    annotations: {
      ...((pod.metadata as JsonObject).annotations as JsonObject),
      [ANNOTATIONS.hopLimit]: "0",
      [ANNOTATIONS.sessionsRequired]: "false",
    },
  };
  const fromVm = sidecarEnv(pod, chart);
  assertEquals([fromVm.IMDS_HOP_LIMIT, fromVm.IMDS_SESSIONS_REQUIRED], ["0", "false"]);
});

function vm(annotations: Record<string, string>, serial?: string): JsonObject {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: { name: "v6", namespace: "vms" },
    spec: {
      template: {
        metadata: { annotations: { [ANNOTATIONS.enabled]: "true", ...annotations } },
        spec: { domain: serial === undefined ? {} : { firmware: { serial } } },
      },
    },
  };
}

const serialOf = (document: JsonObject, annotations: Record<string, string>) => {
  const mutation = mutateVm("VirtualMachine", document, { serialInjection: true });
  const patched = applyPatch(document, mutation.operations as unknown as JsonObject[]) as {
    spec: { template: { spec: { domain: { firmware?: { serial?: string } } } } };
  };
  return { serial: patched.spec.template.spec.domain.firmware?.serial, mutation, annotations };
};

Deno.test("seed-address ipv6 points the NoCloud serial at [fd00:ec2::254]; switching back and forth replaces ours", () => {
  assertEquals(readSeedSerial({}).value, NOCLOUD_SERIAL);
  assertEquals(NOCLOUD_SERIAL_V6, "ds=nocloud;s=http://[fd00:ec2::254]/v1/;dsmode=net");
  const v6 = { [ANNOTATIONS.seedAddress]: "ipv6" };
  assertEquals(serialOf(vm(v6), v6).serial, NOCLOUD_SERIAL_V6);
  assertEquals(serialOf(vm(v6, NOCLOUD_SERIAL), v6).serial, NOCLOUD_SERIAL_V6);
  assertEquals(serialOf(vm({}, NOCLOUD_SERIAL_V6), {}).serial, NOCLOUD_SERIAL);
  const same = serialOf(vm(v6, NOCLOUD_SERIAL_V6), v6);
  assertEquals(same.mutation.operations, []);
  // A user's own serial is still kept, with the serial cloud-init needs named.
  const own = serialOf(vm(v6, "ds=nocloud;s=http://10.1.2.3/"), v6);
  assertEquals(own.serial, "ds=nocloud;s=http://10.1.2.3/");
  assertMatch(own.mutation.warnings.join("\n"), /\[fd00:ec2::254\]/);
});

Deno.test("odd seed-address, hop-limit and sessions-required values warn on the VM", () => {
  const odd = {
    [ANNOTATIONS.seedAddress]: "v6",
    [ANNOTATIONS.hopLimit]: "300",
    [ANNOTATIONS.sessionsRequired]: "maybe",
  };
  const result = serialOf(vm(odd), odd);
  assertEquals(result.serial, NOCLOUD_SERIAL);
  assertEquals(result.mutation.warnings.length, 3);
  assertMatch(
    result.mutation.warnings.join("\n"),
    /seed-address is "v6"; expected "ipv4" or "ipv6"/,
  );
});

Deno.test({
  name: "kubelet: a VM that requires sessions gets a sidecar that refuses the token without one",
  ignore: !canMaterialise(),
  async fn() {
    const pod = await fixture("pod_masquerade");
    (pod.metadata as { annotations: Record<string, string> }).annotations[
      ANNOTATIONS.sessionsRequired
    ] = "true";
    const config = webhookConfigFrom();
    const patched = applyPatch(pod, await webhookPatch(pod, config));
    const materialised = await materialise(patched, SIDECAR_CONTAINER_NAME, {
      token: () => "header.e30.signature",
    });
    const process = await startSidecarServe(materialised, [`${METADATA_ADDRESS}/32`]);
    const curl = async (path: string, headers: Record<string, string>, method = "GET") => {
      const { status, body } = await metadataRequest(process, path, { method, headers });
      return { status, body: new TextDecoder().decode(body) };
    };
    try {
      const deadline = Date.now() + 20_000;
      while ((await curl("/healthz", {})).status !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const env = Object.fromEntries(
        materialised.env.map(([name, value]) => [name, new TextDecoder().decode(value)]),
      );
      assertEquals([env.IMDS_SESSIONS_REQUIRED, env.IMDS_HOP_LIMIT], ["true", "1"]);
      const refused = await curl("/v1/token", { Metadata: "true" });
      assertEquals([refused.status, JSON.parse(refused.body).error], [401, "missing_session"]);
      const session = await curl(SESSION_PATH, { [SESSION_TTL_HEADER]: "60" }, "PUT");
      assertEquals(session.status, 200);
      const token = await curl("/v1/token", { Metadata: "true", [SESSION_HEADER]: session.body });
      assertEquals(token.status, 200);
    } finally {
      await process.stop();
      await process.child.stdout.cancel().catch(() => {});
      await process.child.stderr.cancel().catch(() => {});
      await materialised.remove();
    }
  },
});
