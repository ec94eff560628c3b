/**
 * cloud-init's own OpenStack reader (Debian's cloud-init package, run by
 * /usr/bin/python3) against the real sidecar process, as a guest reaches it:
 * the sidecar serves 169.254.169.254:80 in a "pod" namespace, the reader runs
 * in a "guest" namespace behind a veth whose MAC the guest's NIC has.
 */

import { assert, assertEquals } from "../../../testing/assert.ts";
import { cloudInitInstalled, DEBIAN_PYTHON } from "../../../testing/cloud_init.ts";
import { sidecarCommand } from "../../../testing/sidecar_artifact.ts";
import { netnsTest } from "../../../testing/netns/harness.ts";
import { instanceUuid } from "./openstack_documents.ts";

const GUEST_MAC = "52:54:00:12:34:56";
const KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb8B0Yb1fdUr4kFq3DqUfRpDZbcVTbvLFrVh8d0fM6U alice@laptop";

/** Reads everything the OpenStack datasource reads, and converts it as the datasource does. */
const READER = `
import json, sys
from cloudinit import sources
from cloudinit.sources.helpers import openstack
reader = openstack.MetadataReader("http://169.254.169.254", timeout=5, retries=0)
results = reader.read_v2()
md = results["metadata"]
network = results.get("networkdata")
print(json.dumps({
    "version": reader._find_working_version(),
    "instance_id": md.get("instance-id"),
    "local_hostname": md.get("local-hostname"),
    "public_keys": md.get("public_keys"),
    "meta": md.get("meta"),
    "userdata": results["userdata"].decode() if isinstance(results["userdata"], bytes) else results["userdata"],
    "vendordata": sources.convert_vendordata(results.get("vendordata")),
    "vendordata2": sources.convert_vendordata(results.get("vendordata2")),
    "networkdata": network,
    "network_config": openstack.convert_net_json(network) if network else None,
    "ec2": results.get("ec2-metadata"),
}))
`;

async function sh(...args: string[]): Promise<string> {
  const output = await new Deno.Command(args[0], {
    args: args.slice(1),
    stderr: "piped",
    stdout: "piped",
  })
    .output();
  if (!output.success) {
    throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

interface Sidecar {
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Starts the sidecar's `serve` in namespace `ns` as the image runs it; resolves once it listens. */
async function startSidecar(ns: string, env: Record<string, string>): Promise<Sidecar> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...await sidecarCommand(), "serve"],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  let listening = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        logs.push(line);
        if (line.msg === "metadata server listening") listening();
      }
    }
  })();
  const exited = child.status.then((status) => {
    throw new Error(`the sidecar exited early (${status.code}): ${JSON.stringify(logs)}`);
  });
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return {
    logs,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
}

/** A pod namespace and a guest namespace joined by a veth; the guest's end has GUEST_MAC. */
async function withPodAndGuest(fn: (pod: string, guest: string) => Promise<void>): Promise<void> {
  const id = `${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
  const pod = `imds-os-pod-${id}`;
  const guest = `imds-os-guest-${id}`;
  await sh("ip", "netns", "add", pod);
  await sh("ip", "netns", "add", guest);
  try {
    await sh(
      "ip",
      "-n",
      pod,
      "link",
      "add",
      "vm0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      guest,
    );
    await sh("ip", "-n", guest, "link", "set", "eth0", "address", GUEST_MAC);
    for (
      const [ns, dev, address] of [[pod, "vm0", "10.0.2.1/24"], [guest, "eth0", "10.0.2.2/24"]]
    ) {
      await sh("ip", "-n", ns, "link", "set", "lo", "up");
      await sh("ip", "-n", ns, "addr", "add", address, "dev", dev);
      await sh("ip", "-n", ns, "link", "set", dev, "up");
    }
    await sh("ip", "-n", pod, "addr", "add", "169.254.169.254/32", "dev", "lo");
    await sh("ip", "-n", guest, "route", "add", "169.254.169.254/32", "via", "10.0.2.1");
    await fn(pod, guest);
  } finally {
    await sh("ip", "netns", "del", guest).catch(() => {});
    await sh("ip", "netns", "del", pod).catch(() => {});
  }
}

async function readAsCloudInit(guest: string): Promise<Record<string, unknown>> {
  return JSON.parse(await sh("ip", "netns", "exec", guest, DEBIAN_PYTHON, "-c", READER));
}

function baseEnv(dir: string): Record<string, string> {
  return {
    IMDS_LISTEN_ADDR: "169.254.169.254:80",
    IMDS_NAMESPACE: "team-a",
    IMDS_VM_NAME: "debian-1",
    IMDS_TOKEN_PATH: `${dir}/token`,
    IMDS_SSH_KEYS_DIR: `${dir}/keys`,
    IMDS_STATE_DIR: dir,
    IMDS_USER_DATA: "#cloud-config\nruncmd: [touch /tmp/from-user-data]\n",
    IMDS_VENDOR_DATA: "#cloud-config\npackages: [htop]\n",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: dir,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
  };
}

netnsTest(
  "cloud-init's OpenStack reader gets metadata, keys, user-data, vendor-data and DHCP by MAC",
  async () => {
    if (!cloudInitInstalled()) {
      if (Deno.env.get("CI") === "true") throw new Error("Debian's cloud-init is not installed");
      console.warn("skipped: Debian's cloud-init is not installed (apt-get install cloud-init)");
      return;
    }
    const dir = await Deno.makeTempDir({ prefix: "imds-cloud-init-" });
    await Deno.mkdir(`${dir}/keys/team-keys`, { recursive: true });
    await Deno.writeTextFile(`${dir}/keys/team-keys/alice`, KEY + "\n");
    try {
      await withPodAndGuest(async (pod, guest) => {
        const sidecar = await startSidecar(pod, baseEnv(dir));
        let read;
        try {
          read = await readAsCloudInit(guest);
        } finally {
          await sidecar.stop();
        }
        assertEquals(read.version, "2018-08-27");
        assertEquals(
          read.instance_id,
          instanceUuid({ namespace: "team-a", vmName: "debian-1", serviceAccountName: "default" }),
        );
        assertEquals(read.local_hostname, "debian-1");
        assertEquals(read.public_keys, { "team-keys/alice": KEY });
        assertEquals(read.meta, {});
        assertEquals(read.userdata, "#cloud-config\nruncmd: [touch /tmp/from-user-data]\n");
        assertEquals(read.vendordata, "#cloud-config\npackages: [htop]\n");
        assertEquals(read.vendordata2, null);
        // The guest's NIC, found by the MAC its request came from, configured by DHCP.
        assertEquals(read.network_config, {
          version: 1,
          config: [{
            type: "physical",
            mac_address: GUEST_MAC,
            name: "eth0",
            subnets: [{ type: "dhcp4" }],
          }],
        });
        // The EC2-style crawl gets a clean 404, which cloud-init takes as "none".
        assertEquals(read.ec2, {});
        const requests = sidecar.logs.filter((line) => line.msg === "request");
        assert(requests.some((line) => line.path === "/latest/meta-data/" && line.status === 404));
        assert(requests.every((line) => line.client === "10.0.2.2"));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

netnsTest(
  "cloud-init turns a static network-config, served as network_data.json, into the same settings",
  async () => {
    if (!cloudInitInstalled()) {
      if (Deno.env.get("CI") === "true") throw new Error("Debian's cloud-init is not installed");
      return;
    }
    const dir = await Deno.makeTempDir({ prefix: "imds-cloud-init-" });
    try {
      await withPodAndGuest(async (pod, guest) => {
        const sidecar = await startSidecar(pod, {
          ...baseEnv(dir),
          IMDS_NETWORK_CONFIG: [
            "version: 2",
            "ethernets:",
            "  lan:",
            `    match: {macaddress: "${GUEST_MAC.toUpperCase()}"}`,
            "    addresses: [10.0.2.2/24]",
            "    routes: [{to: default, via: 10.0.2.1}, {to: 192.168.0.0/16, via: 10.0.2.254}]",
            "    nameservers: {addresses: [10.0.2.3]}",
            "",
          ].join("\n"),
        });
        let read;
        try {
          read = await readAsCloudInit(guest);
        } finally {
          await sidecar.stop();
        }
        assertEquals(read.network_config, {
          version: 1,
          config: [
            {
              type: "physical",
              mac_address: GUEST_MAC,
              name: "eth0",
              subnets: [{
                type: "static",
                address: "10.0.2.2",
                netmask: "255.255.255.0",
                ipv4: true,
                routes: [
                  { network: "0.0.0.0", netmask: "0.0.0.0", gateway: "10.0.2.1" },
                  { network: "192.168.0.0", netmask: "255.255.0.0", gateway: "10.0.2.254" },
                ],
              }],
            },
            { type: "nameserver", address: "10.0.2.3" },
          ],
        });
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

netnsTest(
  "cloud-init's OpenStack reader gets the VM's labels and custom metadata in meta, custom metadata winning",
  async () => {
    if (!cloudInitInstalled()) {
      if (Deno.env.get("CI") === "true") throw new Error("Debian's cloud-init is not installed");
      return;
    }
    const dir = await Deno.makeTempDir({ prefix: "imds-cloud-init-" });
    // The kubelet's downward API whole-map files.
    await Deno.writeTextFile(
      `${dir}/labels`,
      [
        'app="web"',
        'kubevirt.io="virt-launcher"',
        'kubevirt.io/created-by="7b0c8f9e-3f4a-4d2b-9c1e-5a6b7c8d9e0f"',
        'role="from-label"',
        'tier="frontend"',
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/annotations`,
      [
        'kubevirt.io/domain="debian-1"',
        'meta.imds.kubevirt.io/admin_pass="not-from-an-annotation"',
        'meta.imds.kubevirt.io/owner="Ops \\"Team\\" \\u00e9"',
        'meta.imds.kubevirt.io/role="from-custom-metadata"',
      ].join("\n"),
    );
    try {
      await withPodAndGuest(async (pod, guest) => {
        const sidecar = await startSidecar(pod, {
          ...baseEnv(dir),
          IMDS_POD_LABELS_FILE: `${dir}/labels`,
          IMDS_POD_ANNOTATIONS_FILE: `${dir}/annotations`,
          IMDS_ADMIN_USERNAME: "cloud-admin",
        });
        let read;
        try {
          read = await readAsCloudInit(guest);
        } finally {
          await sidecar.stop();
        }
        assertEquals(read.meta, {
          app: "web",
          role: "from-custom-metadata",
          tier: "frontend",
          owner: 'Ops "Team" \u00e9',
          admin_username: "cloud-admin",
        });
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
