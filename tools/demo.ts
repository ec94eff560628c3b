/**
 * `deno task demo`: the metadata service on loopback, no cluster needed.
 * Starts the sidecar as its image runs it (its bundle, services/sidecar/bundle.ts,
 * with the runtime flags of the `sidecar` task, subcommand `serve`) with a demo identity, token and user-data, then makes the
 * calls a guest makes with curl and prints them.
 */

import { sidecarCommand } from "../testing/sidecar_artifact.ts";
import { freePort, startServer } from "../testing/processes.ts";

const DEMO_USER_DATA = `#cloud-config
hostname: demo-vm
users:
  - name: demo
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyOnly demo@example]
runcmd:
  - echo "configured by kubevirt-imds" > /etc/motd
`;

/** A JWT-shaped demo token with a real `exp` one hour from now (unsigned: demo only). */
function demoToken(): string {
  const part = (value: unknown) =>
    btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  const now = Math.floor(Date.now() / 1000);
  return [
    part({ alg: "none", typ: "JWT" }),
    part({
      iss: "https://kubernetes.default.svc",
      sub: "system:serviceaccount:demo:demo-vm-sa",
      aud: ["https://kubernetes.default.svc"],
      iat: now,
      exp: now + 3600,
    }),
    "demo-signature",
  ].join(".");
}

async function curl(args: string[]): Promise<void> {
  const shown = args.map((arg) => (/[\s"]/.test(arg) ? `'${arg}'` : arg));
  console.log(`\n$ curl ${shown.join(" ")}`);
  const output = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout).replaceAll("\r\n", "\n").trimEnd();
  console.log(text || "(empty response)");
  if (!output.success) console.log(new TextDecoder().decode(output.stderr).trimEnd());
}

async function loopbackDemo(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "imds-demo-" });
  const tokenPath = `${dir}/token`;
  await Deno.writeTextFile(tokenPath, demoToken());
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const [command, ...args] = await sidecarCommand();
  console.log(`Starting the sidecar on ${base} (deno ${args.join(" ")} serve)`);
  const sidecar = await startServer({
    command,
    args: [...args, "serve"],
    port,
    env: {
      IMDS_LISTEN_ADDR: `127.0.0.1:${port}`,
      IMDS_NAMESPACE: "demo",
      IMDS_VM_NAME: "demo-vm",
      IMDS_SA_NAME: "demo-vm-sa",
      IMDS_POD_NAME: "virt-launcher-demo-vm-7x2kq",
      IMDS_VMI_UID: "3f0c6b3e-9d1a-4c55-8a51-5c7e2e1b9a10",
      IMDS_NODE_NAME: "demo-node",
      IMDS_TOKEN_PATH: tokenPath,
      IMDS_USER_DATA: DEMO_USER_DATA,
      IMDS_LOG_LEVEL: "warn",
    },
    inheritOutput: true,
  });
  try {
    console.log("\nWhat a guest sees (in a VM the address is http://169.254.169.254):");
    await curl(["-sS", "-i", "-H", "Metadata: true", `${base}/v1/identity`]);
    await curl(["-sS", "-i", "-H", "Metadata: true", `${base}/v1/token`]);
    console.log("\ncloud-init's NoCloud fetches (no header needed):");
    await curl(["-sS", "-i", `${base}/v1/meta-data`]);
    await curl(["-sS", "-i", `${base}/v1/user-data`]);
    await curl(["-sS", "-i", `${base}/v1/network-config`]);
    console.log("\nWithout the Metadata header, identity and token are refused:");
    await curl(["-sS", "-i", `${base}/v1/token`]);
  } finally {
    await sidecar.stop();
    await Deno.remove(dir, { recursive: true });
  }
  console.log("\nSidecar stopped.");
}

async function main(): Promise<void> {
  await loopbackDemo();
  if (Deno.uid() === 0) {
    console.log("\nRunning as root: the same sidecar with `run`, in network namespaces,");
    console.log("for a VM on a Multus network without DHCP (link-local address, ARP).");
    const { runLabDemo } = await import("../testing/netns/demo.ts");
    const code = await runLabDemo();
    if (code !== 0) Deno.exit(code);
  }
}

await main();
