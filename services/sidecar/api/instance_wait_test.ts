/**
 * The real sidecar (serve mode, production runtime flags) reading the pod's
 * labels, annotations and network-status from downward API files that change
 * on disk as the kubelet changes them.
 */

import { assert, assertEquals, assertStringIncludes } from "../../../testing/assert.ts";
import { downwardApiMap, writeLikeKubelet } from "../../../testing/atomic_writer.ts";
import { sidecarCommand } from "../../../testing/sidecar_artifact.ts";
import { freePort, type ServerProcess, startServer } from "../../../testing/processes.ts";

const HEADERS = { Metadata: "true" };

const ANNOTATIONS = {
  "kubevirt.io/domain": "web-1",
  "imds.kubevirt.io/enabled": "true",
  "meta.imds.kubevirt.io/role": "frontend",
  "meta.imds.kubevirt.io/motd": 'line one\nline "two"',
  "example.com/owner": "team-a",
  "secret.example.com/hidden": "no",
};
const LABELS = { app: "web", tier: "frontend", "kubevirt.io": "virt-launcher" };

async function startSidecar(
  dir: string,
  extraEnv: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = freePort();
  const [command, ...args] = await sidecarCommand();
  await Deno.writeTextFile(`${dir}/token`, "header.eyJleHAiOjQxMDI0NDQ4MDB9.signature");
  return await startServer({
    command,
    args: [...args, "serve"],
    port,
    env: {
      IMDS_LISTEN_ADDR: `127.0.0.1:${port}`,
      IMDS_NAMESPACE: "shop",
      IMDS_VM_NAME: "web-1",
      IMDS_NODE_NAME: "node-a",
      IMDS_TOKEN_PATH: `${dir}/token`,
      IMDS_POD_LABELS_FILE: `${dir}/pod/labels`,
      IMDS_POD_ANNOTATIONS_FILE: `${dir}/pod/annotations`,
      IMDS_ALLOWED_ANNOTATIONS: "example.com/*",
      IMDS_RATE_LIMIT: "1000",
      ...Object.fromEntries(
        Object.entries(extraEnv).map(([name, value]) => [name, value.replace("$DIR", dir)]),
      ),
    },
  });
}

async function withSidecar(
  fn: (get: (path: string, init?: RequestInit) => Promise<Response>, dir: string) => Promise<void>,
  extraEnv?: Record<string, string>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "imds-instance-" });
  await Deno.mkdir(`${dir}/pod`);
  await writeLikeKubelet(`${dir}/pod`, {
    labels: downwardApiMap(LABELS),
    annotations: downwardApiMap(ANNOTATIONS),
    "network-status": "",
  });
  const sidecar = await startSidecar(dir, extraEnv);
  try {
    await fn((path, init) => fetch(`http://127.0.0.1:${sidecar.port}${path}`, init), dir);
  } finally {
    await sidecar.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a guest reads its labels, allowed annotations and custom metadata", async () => {
  await withSidecar(async (get) => {
    const response = await get("/v1/instance", { headers: HEADERS });
    assertEquals(response.status, 200);
    assert(response.headers.get("etag")?.startsWith('"'));
    const document = await response.json();
    assertEquals(document.labels, { app: "web", tier: "frontend" });
    assertEquals(document.annotations, { "example.com/owner": "team-a" });
    assertEquals(document.meta, { motd: 'line one\nline "two"', role: "frontend" });
    assertEquals([document.vmName, document.nodeName], ["web-1", "node-a"]);

    const label = await get("/v1/instance/labels/tier", { headers: HEADERS });
    assertEquals([label.status, await label.text()], [200, "frontend"]);
    const meta = await get("/v1/instance/meta/motd", { headers: HEADERS });
    assertEquals([meta.status, await meta.text()], [200, 'line one\nline "two"']);
    const absent = await get("/v1/instance/meta/nothing", { headers: HEADERS });
    assertEquals([absent.status, (await absent.json()).error], [404, "not_found"]);
    const unprotected = await get("/v1/instance");
    assertEquals([unprotected.status, (await unprotected.json()).error], [400, "missing_header"]);

    const metaData = await (await get("/v1/meta-data")).text();
    assertStringIncludes(metaData, `labels: {"app":"web","tier":"frontend"}`);
    assertStringIncludes(metaData, `meta: {"motd":"line one\\nline \\"two\\"","role":"frontend"}`);
  });
});

Deno.test("a waiting guest wakes when the kubelet rewrites the labels, and times out unchanged otherwise", async () => {
  await withSidecar(async (get, dir) => {
    const first = await get("/v1/instance", { headers: HEADERS });
    const etag = first.headers.get("etag")!;
    await first.body?.cancel();

    const unchanged = await get("/v1/instance?wait=true&timeout=1", {
      headers: { ...HEADERS, "If-None-Match": etag },
    });
    assertEquals([unchanged.status, unchanged.headers.get("etag")], [200, etag]);
    await unchanged.body?.cancel();

    const waiting = get("/v1/instance?wait=true&timeout=20", {
      headers: { ...HEADERS, "If-None-Match": etag },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writeLikeKubelet(`${dir}/pod`, {
      labels: downwardApiMap({ ...LABELS, tier: "backend" }),
      annotations: downwardApiMap({ ...ANNOTATIONS, "meta.imds.kubevirt.io/role": "api" }),
      "network-status": "",
    });
    const woken = await waiting;
    assertEquals(woken.status, 200);
    assert(woken.headers.get("etag") !== etag, "the new version has a new ETag");
    const document = await woken.json();
    assertEquals([document.labels.tier, document.meta.role], ["backend", "api"]);
  });
});

Deno.test("bad wait parameters and too many waiting requests get precise errors", async () => {
  await withSidecar(async (get) => {
    const badTimeout = await get("/v1/instance?wait=true&timeout=600", { headers: HEADERS });
    assertEquals([badTimeout.status, (await badTimeout.json()).error], [400, "invalid_parameter"]);
    const waits = Array.from(
      { length: 5 },
      () => get("/v1/instance?wait=true&timeout=2", { headers: HEADERS }),
    );
    const statuses = await Promise.all(waits.map(async (w) => {
      const response = await w;
      await response.body?.cancel();
      return response.status;
    }));
    assertEquals(statuses.filter((s) => s === 429).length, 1, `statuses ${statuses}`);
  });
});

Deno.test("custom metadata over the limits: /v1/instance says why, everything else is served", async () => {
  await withSidecar(async (get, dir) => {
    await writeLikeKubelet(`${dir}/pod`, {
      labels: downwardApiMap(LABELS),
      annotations: downwardApiMap({
        ...ANNOTATIONS,
        "meta.imds.kubevirt.io/big": "x".repeat(5000),
      }),
      "network-status": "",
    });
    const instance = await get("/v1/instance", { headers: HEADERS });
    const body = await instance.json();
    assertEquals([instance.status, body.error], [422, "invalid_custom_metadata"]);
    assertStringIncludes(body.message, "meta.imds.kubevirt.io/big: the value is 5000 bytes");
    const label = await get("/v1/instance/labels/app", { headers: HEADERS });
    assertEquals([label.status, await label.text()], [200, "web"]);
    const metaData = await get("/v1/meta-data");
    assertEquals(metaData.status, 200);
    assert(!(await metaData.text()).includes("meta:"), "refused custom metadata is left out");
    assertEquals((await get("/healthz")).status, 200);
  });
});

Deno.test("network-config from the pod's networks: 503 with Retry-After until Multus writes network-status", async () => {
  await withSidecar(async (get, dir) => {
    const early = await get("/v1/network-config");
    assertEquals(
      [early.status, early.headers.get("retry-after"), (await early.json()).error],
      [503, "1", "network_status_pending"],
    );
    const status = [
      {
        name: "ovn-kubernetes",
        interface: "eth0",
        ips: ["10.244.1.5"],
        mac: "0a:58:0a:f4:01:05",
        default: true,
      },
      {
        name: "shop/sriov-net",
        interface: "pod2c26b46b68f",
        ips: ["10.56.217.171"],
        mac: "ca:fe:c0:ff:ee:01",
        gateway: ["10.56.217.1"],
        "device-info": { type: "pci" },
      },
    ];
    await writeLikeKubelet(`${dir}/pod`, {
      labels: downwardApiMap(LABELS),
      annotations: downwardApiMap(ANNOTATIONS),
      "network-status": JSON.stringify(status),
    });
    const ready = await get("/v1/network-config");
    const text = await ready.text();
    assertEquals(ready.status, 200, text);
    assertStringIncludes(text, `macaddress: "ca:fe:c0:ff:ee:01"`);
    assertStringIncludes(text, `- "10.56.217.171/24"`);

    await writeLikeKubelet(`${dir}/pod`, {
      labels: downwardApiMap(LABELS),
      annotations: downwardApiMap(ANNOTATIONS),
      "network-status": "[{not json",
    });
    const broken = await get("/v1/network-config");
    assertEquals([broken.status, (await broken.json()).error], [503, "network_status_invalid"]);
    assertEquals((await get("/v1/instance", { headers: HEADERS })).status, 200);
  }, {
    IMDS_NETWORK_CONFIG_FROM: "pod-networks",
    IMDS_POD_NETWORK_SUBNETS: "10.56.217.0/24",
    IMDS_NETWORK_STATUS_FILE: "$DIR/pod/network-status",
    IMDS_POD_INTERFACES: "pod2c26b46b68f",
  });
});
