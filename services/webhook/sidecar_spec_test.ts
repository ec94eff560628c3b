/**
 * What the webhook writes into the sidecar container reaches the guest byte
 * for byte: the webhook's real patch, the container as the kubelet
 * materialises it (env expansion, downward API / Secret / projected files),
 * the real sidecar process with the production runtime flags, and HTTP from
 * inside the pod's network namespace.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";
import { webhookConfigFrom } from "../../testing/webhook_config.ts";
import {
  applyPatch,
  canMaterialise,
  type ContainerProcess,
  materialise,
  type Materialised,
  metadataRequest,
  startSidecarServe,
  webhookPatch,
} from "../../testing/kubelet.ts";
import { ANNOTATIONS, METADATA_ADDRESS, SIDECAR_CONTAINER_NAME } from "../shared/contract.ts";
import { MAX_VENDOR_DATA_BYTES, type WebhookConfig } from "./config.ts";
import type { JsonObject } from "./json_patch.ts";

const ROOT = new URL("../../", import.meta.url);
const ignore = !canMaterialise();

/** Text the kubelet, a shell or YAML would all like to rewrite. */
const HOSTILE = [
  "#cloud-config",
  "runcmd:",
  "  - echo $$ $(IMDS_POD_NAME) $(IMDS_NAMESPACE) $HOME ${HOME} $",
  "  - echo '5$€' \"double $(quotes)\" `back ticks` \\ backslash \\\\ two",
  "  - echo tab\there, CR\r, bell\x07, DEL\x7f, $$$$$(X), $( unterminated",
  "  - echo 漢字 🎉 e\u0301 \u00a0nbsp $\u00e9 $🎉",
  "",
].join("\n");

async function launcherPod(annotations: Record<string, string>): Promise<JsonObject> {
  const pod = JSON.parse(
    await Deno.readTextFile(new URL("services/webhook/fixtures/pod_masquerade.json", ROOT)),
  );
  // What the API server and the scheduler fill in before the kubelet sees the pod.
  pod.metadata.name = "virt-launcher-fedora-imds-x7k2p";
  pod.metadata.uid = "0d4d3c2b-1a09-4f8e-b7c6-d5e4f3a2b1c0";
  pod.spec.nodeName = "node-3.example.com";
  Object.assign(pod.metadata.annotations, annotations);
  return pod;
}

/** The token the kubelet would project for an audience: a JWT whose payload names it. */
function tokenFor(audience: string | undefined): string {
  const claims = { aud: [audience ?? "https://kubernetes.default.svc"], exp: 4102444800 };
  const payload = btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(claims))))
    .replaceAll("=", "").replaceAll("+", "-")
    .replaceAll("/", "_");
  return `eyJhbGciOiJSUzI1NiJ9.${payload}.c2lnbmF0dXJl`;
}

interface Pod {
  materialised: Materialised;
  process: ContainerProcess;
  /** Status, headers and exact body bytes of a GET from inside the pod's network. */
  get(
    path: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Uint8Array }>;
  stop(): Promise<void>;
}

/** Runs the webhook on `pod`, materialises the sidecar and starts it (`serve`, production flags). */
async function startSidecar(
  config: WebhookConfig,
  pod: JsonObject,
  cluster: Parameters<typeof materialise>[2] = {},
): Promise<Pod> {
  const patched = applyPatch(pod, await webhookPatch(pod, config));
  const materialised = await materialise(patched, SIDECAR_CONTAINER_NAME, {
    token: tokenFor,
    ...cluster,
  });
  const process = await startSidecarServe(materialised, [`${METADATA_ADDRESS}/32`]);
  const get: Pod["get"] = (path, headers = {}) => metadataRequest(process, path, { headers });
  // Ready when /healthz answers from inside the pod.
  let exited = false;
  process.child.status.then(() => exited = true);
  const deadline = Date.now() + 20_000;
  while ((await get("/healthz")).status !== 200) {
    if (exited || Date.now() > deadline) {
      await process.stop();
      const stderr = new TextDecoder().decode((await process.child.output()).stderr);
      await materialised.remove();
      throw new Error(`the sidecar did not start serving: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    materialised,
    process,
    get,
    async stop() {
      await process.stop();
      await process.child.stdout.cancel().catch(() => {});
      await process.child.stderr.cancel().catch(() => {});
      await materialised.remove();
    },
  };
}

const text = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(bytes);

Deno.test({
  name:
    "kubelet: vendor-data, user-data, network-config, tokens and identity reach the guest byte for byte",
  ignore,
  async fn() {
    const audiences = [
      "vault",
      "a$$b",
      "$(IMDS_POD_NAME)",
      "https://sts.example.com/€$x",
      "$",
    ];
    const config = webhookConfigFrom({ vendorData: HOSTILE, token: { audiences } });
    const networkConfig = `version: 2\n# ${HOSTILE}`;
    const pod = await launcherPod({
      [ANNOTATIONS.userData]: HOSTILE,
      [ANNOTATIONS.networkConfigSecret]: "net-config/network",
    });
    const sidecar = await startSidecar(config, pod, {
      secrets: { "net-config": { network: networkConfig } },
    });
    try {
      // The container spec itself carries escaped values; the process gets the originals.
      const env = Object.fromEntries(
        sidecar.materialised.env.map(([name, value]) => [name, text(value)]),
      );
      assertEquals(env.IMDS_VENDOR_DATA, HOSTILE);
      assertEquals(env.IMDS_POD_NAME, "virt-launcher-fedora-imds-x7k2p");

      for (
        const [path, expected] of [
          ["/v1/vendor-data", HOSTILE],
          ["/v1/user-data", HOSTILE],
          ["/v1/network-config", networkConfig],
        ]
      ) {
        const response = await sidecar.get(path);
        assertEquals(response.status, 200, path);
        assertEquals(text(response.body), expected, path);
      }

      for (const audience of [...audiences, undefined]) {
        const query = audience === undefined ? "" : `?audience=${encodeURIComponent(audience)}`;
        const response = await sidecar.get(`/v1/token${query}`, { Metadata: "true" });
        assertEquals(response.status, 200, `audience ${audience}`);
        assertEquals(JSON.parse(text(response.body)).token, tokenFor(audience));
      }

      const identity = await sidecar.get("/v1/identity", { Metadata: "true" });
      assertEquals(JSON.parse(text(identity.body)), {
        namespace: "vms",
        serviceAccountName: "default",
        vmName: "fedora-imds",
        instanceId: "vms-fedora-imds",
        podName: "virt-launcher-fedora-imds-x7k2p",
        vmiUid: "7b0c8f9e-3f4a-4d2b-9c1e-5a6b7c8d9e0f",
        nodeName: "node-3.example.com",
      });
    } finally {
      await sidecar.stop();
    }
  },
});

Deno.test({
  name: "kubelet: vendor-data at the size limit is served whole, even when every byte is a `$`",
  ignore,
  async fn() {
    for (const vendorData of ["$".repeat(MAX_VENDOR_DATA_BYTES), "€".repeat(21_333)]) {
      const pod = await launcherPod({});
      const sidecar = await startSidecar(webhookConfigFrom({ vendorData }), pod);
      try {
        const response = await sidecar.get("/v1/vendor-data");
        assertEquals(response.status, 200);
        assertEquals(text(response.body), vendorData);
      } finally {
        await sidecar.stop();
      }
    }
  },
});

Deno.test("kubelet: vendor-data over the limit is refused when the webhook reads its configuration", () => {
  for (const vendorData of ["#".repeat(MAX_VENDOR_DATA_BYTES + 1), "€".repeat(21_334)]) {
    let message = "";
    try {
      webhookConfigFrom({ vendorData });
    } catch (error) {
      message = (error as Error).message;
    }
    assertMatch(message, /^vendorData: must be at most 64000 bytes \(UTF-8\), got 6400[12]/);
  }
  let nul = "";
  try {
    webhookConfigFrom({ vendorData: "a\0b" });
  } catch (error) {
    nul = (error as Error).message;
  }
  assertEquals(
    nul,
    "vendorData: contains a NUL character, which an environment variable cannot carry",
  );
});

Deno.test({
  name:
    "kubelet: an environment the sidecar cannot decode stops it with its one-line configuration error",
  ignore,
  async fn() {
    // Unescaped, as the webhook once wrote it: the kubelet turns `$€` into bytes that are not UTF-8.
    const config = webhookConfigFrom({});
    const pod = await launcherPod({});
    const patched = applyPatch(pod, await webhookPatch(pod, config));
    const sidecarContainer = ((patched.spec as JsonObject).initContainers as JsonObject[])
      .find((container) => container.name === SIDECAR_CONTAINER_NAME)!;
    (sidecarContainer.env as JsonObject[]).push({ name: "IMDS_VENDOR_DATA", value: "5$€" });
    const materialised = await materialise(patched, SIDECAR_CONTAINER_NAME, { token: tokenFor });
    try {
      const process = await startSidecarServe(materialised);
      const output = await process.child.output();
      assertEquals(output.code, 2);
      const lines = new TextDecoder().decode(output.stdout).trim().split("\n")
        .concat(new TextDecoder().decode(output.stderr).trim().split("\n"))
        .filter((line) => line !== "");
      assertEquals(lines.length, 1, lines.join("\n"));
      const record = JSON.parse(lines[0]);
      assertEquals(record.level, "error");
      assertEquals(record.setting, "IMDS_VENDOR_DATA");
      assertStringIncludes(record.msg, "IMDS_VENDOR_DATA: is not valid UTF-8 text");
      assert(!lines[0].includes("InvalidData"));
    } finally {
      await materialised.remove();
    }
  },
});

Deno.test({
  name: "kubelet: a guest reads the annotations the operator allows in /v1/instance, and no others",
  ignore,
  async fn() {
    const config = webhookConfigFrom({
      sidecar: { allowedAnnotations: ["example.com/owner", "team.example.com/*"] },
    });
    const pod = await launcherPod({
      "example.com/owner": "ops $(IMDS_POD_NAME) $$ 漢字",
      "team.example.com/cost-centre": "42",
      "team.example.com/on-call": "alice",
      "example.com/owner-secret": "not for guests",
      "example.com/other": "not for guests either",
    });
    const sidecar = await startSidecar(config, pod);
    try {
      const env = Object.fromEntries(
        sidecar.materialised.env.map(([name, value]) => [name, text(value)]),
      );
      assertEquals(env.IMDS_ALLOWED_ANNOTATIONS, "example.com/owner,team.example.com/*");
      const response = await sidecar.get("/v1/instance", { Metadata: "true" });
      assertEquals(response.status, 200);
      assertEquals(JSON.parse(text(response.body)).annotations, {
        "example.com/owner": "ops $(IMDS_POD_NAME) $$ 漢字",
        "team.example.com/cost-centre": "42",
        "team.example.com/on-call": "alice",
      });
    } finally {
      await sidecar.stop();
    }
  },
});
