import { assert, assertEquals, assertMatch } from "../../../testing/assert.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import { instanceUuid, OPENSTACK_VERSIONS } from "./openstack_documents.ts";
import { startMetadataServer } from "./server.ts";

const ED25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8B0Yb1fdUr4kFq3DqUfRpDZbcVTbvLFrVh8d0fM6U alice@laptop";

interface Harness {
  dir: string;
  logs: Record<string, unknown>[];
  request(
    path: string,
    init?: RequestInit,
  ): Promise<{ status: number; text: string; headers: Headers }>;
  json(path: string): Promise<Record<string, unknown>>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function start(
  vars: (dir: string) => Record<string, string> = () => ({}),
  dir?: string,
): Promise<Harness> {
  const ownDir = dir === undefined;
  dir ??= await Deno.makeTempDir({ prefix: "imds-openstack-test-" });
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "team-a",
    IMDS_VM_NAME: "win-1",
    IMDS_RATE_LIMIT: "0",
    ...vars(dir),
  }));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ component: "test", sink: (line) => logs.push(JSON.parse(line)) });
  const server = startMetadataServer(config, log, { hostname: "127.0.0.1", port: 0 });
  const request = async (path: string, init?: RequestInit) => {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}${path}`, init);
    return { status: response.status, text: await response.text(), headers: response.headers };
  };
  return {
    dir,
    logs,
    request,
    async json(path) {
      const response = await request(path);
      assertEquals(response.status, 200, `${path}: ${response.text}`);
      return JSON.parse(response.text);
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      if (ownDir) await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("GET /openstack lists every dated version and latest; each serves the same metadata", async () => {
  await using api = await start();
  const versions = await api.request("/openstack");
  assertEquals(versions.text.split("\n"), [...OPENSTACK_VERSIONS, "latest"]);
  const latest = await api.json("/openstack/latest/meta_data.json");
  for (const version of OPENSTACK_VERSIONS) {
    assertEquals(await api.json(`/openstack/${version}/meta_data.json`), latest);
  }
  assertEquals(
    latest.uuid,
    instanceUuid({ namespace: "team-a", vmName: "win-1", serviceAccountName: "default" }),
  );
  assertMatch(
    String(latest.uuid),
    /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assertEquals(latest.name, "win-1");
  assertEquals(latest.hostname, "win-1");
  assertEquals(latest.launch_index, 0);
  assertEquals(latest.public_keys, {});
  assertEquals(latest.keys, []);
  assertEquals(latest.meta, {});
  assertEquals("admin_pass" in latest, false);
  // Nova's rules: network_data.json exists from 2015-10-15, the password from 2013-04-04.
  assertEquals((await api.request("/openstack/2013-04-04/network_data.json")).status, 404);
  assertEquals((await api.request("/openstack/2012-08-10/password")).status, 404);
  assertEquals(
    (await api.request("/openstack/2018-08-27")).text.split("\n"),
    ["meta_data.json", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"],
  );
});

Deno.test("user_data is 404 when none is set; vendor data reaches cloud-init under its key", async () => {
  {
    await using api = await start();
    const userData = await api.request("/openstack/latest/user_data");
    assertEquals(userData.status, 404);
    assertEquals(JSON.parse(userData.text).error, "not_found");
    assertEquals(await api.json("/openstack/latest/vendor_data.json"), {});
    assertEquals(await api.json("/openstack/latest/vendor_data2.json"), {});
    // No network-config and a loopback client: nothing to say, DHCP is the fallback.
    assertEquals((await api.request("/openstack/latest/network_data.json")).status, 404);
  }
  await using api = await start(() => ({
    IMDS_USER_DATA: "#cloud-config\nhostname: from-user-data\n",
    IMDS_VENDOR_DATA: "#cloud-config\nruncmd: [echo vendor]\n",
  }));
  assertEquals(
    (await api.request("/openstack/latest/user_data")).text,
    "#cloud-config\nhostname: from-user-data\n",
  );
  assertEquals(await api.json("/openstack/latest/vendor_data.json"), {
    "cloud-init": "#cloud-config\nruncmd: [echo vendor]\n",
  });
  assert((await api.request("/openstack/latest")).text.split("\n").includes("user_data"));
});

Deno.test("SSH keys from Secret directories reach both APIs; a rotated key is served without a restart", async () => {
  await using api = await start((dir) => ({ IMDS_SSH_KEYS_DIR: `${dir}/keys` }));
  const secret = `${api.dir}/keys/team-keys`;
  // The kubelet's layout: ..data → a timestamped directory, per-key symlinks into ..data.
  const publish = async (version: string, data: Record<string, string>) => {
    await Deno.mkdir(`${secret}/..${version}`, { recursive: true });
    for (const [key, value] of Object.entries(data)) {
      await Deno.writeTextFile(`${secret}/..${version}/${key}`, value);
      await Deno.remove(`${secret}/${key}`).catch(() => {});
      await Deno.symlink(`..data/${key}`, `${secret}/${key}`);
    }
    await Deno.symlink(`..${version}`, `${secret}/..data_tmp`);
    await Deno.rename(`${secret}/..data_tmp`, `${secret}/..data`);
  };
  await publish("v1", { alice: ED25519 + "\n", junk: "not a key\n" });
  const first = await api.json("/openstack/latest/meta_data.json");
  assertEquals(first.public_keys, { "team-keys/alice": ED25519 });
  assertEquals(first.keys, [{ name: "team-keys/alice", type: "ssh", data: ED25519 }]);
  const nocloud = await api.request("/v1/meta-data");
  assertEquals(
    nocloud.text,
    `instance-id: team-a-win-1\nlocal-hostname: win-1\npublic-keys:\n  - ${
      JSON.stringify(ED25519)
    }\n`,
  );
  const skipped = api.logs.filter((line) => line.msg === "SSH public key skipped");
  assertEquals(skipped.map((line) => [line.secret, line.key, line.line]), [[
    "team-keys",
    "junk",
    1,
  ]]);
  assertMatch(String(skipped[0].reason), /not an OpenSSH public key/);

  const rotated = ED25519.replace("alice@laptop", "alice@new-laptop");
  await publish("v2", { alice: rotated, junk: "not a key\n" });
  assertEquals((await api.json("/openstack/latest/meta_data.json")).public_keys, {
    "team-keys/alice": rotated,
  });
});

Deno.test("the admin password Secret and admin username appear where cloudbase-init reads them", async () => {
  await using api = await start((dir) => ({
    IMDS_ADMIN_PASSWORD_FILE: `${dir}/admin-password`,
    IMDS_ADMIN_USERNAME: "Administrator",
  }));
  await Deno.writeTextFile(`${api.dir}/admin-password`, "S3cret!pass\n");
  const metadata = await api.json("/openstack/latest/meta_data.json");
  assertEquals(metadata.admin_pass, "S3cret!pass");
  assertEquals(metadata.meta, { admin_username: "Administrator" });
});

Deno.test("the posted password is kept once, refused when garbage or too large, and survives a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imds-openstack-state-" });
  const ciphertext = btoa("x".repeat(256));
  const post = (api: Harness, body: BodyInit, path = "/openstack/2013-04-04/password") =>
    api.request(path, { method: "POST", body });
  try {
    {
      await using api = await start(() => ({ IMDS_STATE_DIR: dir }), dir);
      const empty = await api.request("/openstack/2013-04-04/password");
      assertEquals([empty.status, empty.text], [200, ""]);
      const garbage = await post(api, "not base64!");
      assertEquals([garbage.status, JSON.parse(garbage.text).error], [400, "invalid_password"]);
      const large = await post(api, "A".repeat(8192));
      assertEquals([large.status, JSON.parse(large.text).error], [413, "body_too_large"]);
      assertEquals((await post(api, ciphertext, "/openstack/latest/password")).status, 200);
      const again = await post(api, btoa("other"));
      assertEquals([again.status, JSON.parse(again.text).error], [409, "password_already_set"]);
      assertEquals((await api.request("/openstack/2013-04-04/password")).text, ciphertext);
      // Every other path refuses POST.
      const elsewhere = await post(api, "x", "/openstack/latest/meta_data.json");
      assertEquals([elsewhere.status, JSON.parse(elsewhere.text).error], [
        405,
        "method_not_allowed",
      ]);
      assertEquals((await post(api, "x", "/v1/meta-data")).status, 405);
    }
    await using restarted = await start(() => ({ IMDS_STATE_DIR: dir }), dir);
    assertEquals((await restarted.request("/openstack/latest/password")).text, ciphertext);
    assertEquals((await post(restarted, btoa("late"))).status, 409);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("network_data.json translates the user's static network-config", async () => {
  await using api = await start(() => ({
    IMDS_NETWORK_CONFIG: [
      "version: 2",
      "ethernets:",
      "  lan:",
      "    match: {macaddress: '52:54:00:AB:CD:EF'}",
      "    addresses: [192.168.10.5/24, 'fd00:10::5/64']",
      "    gateway4: 192.168.10.1",
      "    nameservers: {addresses: [192.168.10.53]}",
      "",
    ].join("\n"),
  }));
  // The YAML parser loads in the background the first time; a moment later it is there.
  let response = await api.request("/openstack/latest/network_data.json");
  for (let i = 0; i < 50 && response.status === 503; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    response = await api.request("/openstack/latest/network_data.json");
  }
  assertEquals(JSON.parse(response.text), {
    links: [{ id: "lan", type: "phy", ethernet_mac_address: "52:54:00:ab:cd:ef" }],
    networks: [
      {
        id: "network0",
        link: "lan",
        type: "ipv4",
        ip_address: "192.168.10.5",
        netmask: "255.255.255.0",
        routes: [{ network: "0.0.0.0", netmask: "0.0.0.0", gateway: "192.168.10.1" }],
        services: [{ type: "dns", address: "192.168.10.53" }],
      },
      {
        id: "network1",
        link: "lan",
        type: "ipv6",
        ip_address: "fd00:10::5",
        netmask: "ffff:ffff:ffff:ffff::",
        routes: [],
        services: [{ type: "dns", address: "192.168.10.53" }],
      },
    ],
    services: [{ type: "dns", address: "192.168.10.53" }],
  });
});
