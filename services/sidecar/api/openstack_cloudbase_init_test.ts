/**
 * cloudbase-init's first boot against the real sidecar process, request by
 * request, as its OpenStack HTTP service does it (cloudbase/cloudbase-init:
 * metadata/services/httpservice.py, baseopenstackservice.py and base.py;
 * plugins/common/setuserpassword.py and networkconfig.py):
 *
 * 1. load():                 GET openstack/latest/meta_data.json (uuid, hostname, keys, meta…)
 * 2. NetworkConfigPlugin:    GET openstack/latest/network_data.json (404 = "no v2 network data")
 * 3. SetUserPasswordPlugin:  GET openstack/2013-04-04/meta_data.json (can_post_password),
 *                            GET openstack/2013-04-04/password (is_password_set: must be 200),
 *                            POST openstack/2013-04-04/password (base64 of the password
 *                            RSA-encrypted, PKCS#1 v1.5, with the first SSH public key)
 * 4. UserDataPlugin:         GET openstack/latest/user_data (404 = none)
 *
 * Every request is python-requests' (User-Agent python-requests, no Metadata
 * header, a POST body with no content type). Then the owner's side: the
 * sidecar restarts, `imds-sidecar password` prints the ciphertext, and the
 * README's openssl line decrypts it with the private key.
 */

import { assert, assertEquals } from "../../../testing/assert.ts";
import { sidecarCommand } from "../../../testing/sidecar_artifact.ts";
import { freePort, type ServerProcess, startServer } from "../../../testing/processes.ts";

const HEADERS = {
  "user-agent": "python-requests/2.31.0",
  "accept-encoding": "gzip, deflate",
  accept: "*/*",
};

async function run(command: string, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const output = await child.output();
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return output.stdout;
}

function sidecarEnv(dir: string, port: number): Record<string, string> {
  return {
    IMDS_LISTEN_ADDR: `127.0.0.1:${port}`,
    IMDS_NAMESPACE: "windows",
    IMDS_VM_NAME: "win2022",
    IMDS_TOKEN_PATH: `${dir}/token`,
    IMDS_SSH_KEYS_DIR: `${dir}/keys`,
    IMDS_ADMIN_USERNAME: "Administrator",
    IMDS_STATE_DIR: `${dir}/state`,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? dir,
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  };
}

async function startSidecar(dir: string): Promise<ServerProcess> {
  const port = freePort();
  const [command, ...args] = await sidecarCommand();
  return await startServer({
    command,
    args: [...args, "serve"],
    env: sidecarEnv(dir, port),
    port,
  });
}

Deno.test("cloudbase-init's first boot, including the password post, then its retrieval and decryption", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imds-cloudbase-init-" });
  await Deno.mkdir(`${dir}/keys/admin-keys`, { recursive: true });
  await Deno.mkdir(`${dir}/state`);
  // The owner's key pair, made as the README says (PEM, so openssl reads the private key).
  await run("ssh-keygen", [
    "-q",
    "-t",
    "rsa",
    "-b",
    "2048",
    "-m",
    "PEM",
    "-N",
    "",
    "-f",
    `${dir}/id_rsa`,
  ]);
  const publicKey = (await Deno.readTextFile(`${dir}/id_rsa.pub`)).trim();
  await Deno.writeTextFile(`${dir}/keys/admin-keys/ssh-publickey`, publicKey + "\n");
  let sidecar = await startSidecar(dir);
  const url = (path: string) => `http://127.0.0.1:${sidecar.port}/${path}`;
  const get = async (path: string) => {
    const response = await fetch(url(path), { headers: HEADERS });
    return { status: response.status, body: await response.text() };
  };
  try {
    // 1. load()
    const latest = await get("openstack/latest/meta_data.json");
    assertEquals(latest.status, 200);
    const metadata = JSON.parse(latest.body);
    assertEquals(metadata.hostname, "win2022");
    assertEquals(metadata.meta.admin_username, "Administrator");
    assertEquals(Object.values(metadata.public_keys), [publicKey]);
    assertEquals(metadata.keys, [{
      name: "admin-keys/ssh-publickey",
      type: "ssh",
      data: publicKey,
    }]);
    assertEquals("admin_pass" in metadata, false, "no injected password: cloudbase-init makes one");
    // 2. no network-config, and a loopback client has no MAC: 404, the guest keeps DHCP.
    assertEquals((await get("openstack/latest/network_data.json")).status, 404);
    // 3. the password
    assertEquals((await get("openstack/2013-04-04/meta_data.json")).status, 200);
    assertEquals(await get("openstack/2013-04-04/password"), { status: 200, body: "" });
    // The guest encrypts its new password with the first key (CryptManager.public_encrypt).
    await run("ssh-keygen", ["-e", "-m", "PKCS8", "-f", `${dir}/id_rsa.pub`]).then((pem) =>
      Deno.writeFile(`${dir}/guest_pub.pem`, pem)
    );
    const password = "Generated-Pa55word!";
    const encrypted = await run(
      "openssl",
      [
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        `${dir}/guest_pub.pem`,
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
      ],
      new TextEncoder().encode(password),
    );
    const body = new TextEncoder().encode(encrypted.toBase64());
    const posted = await fetch(url("openstack/2013-04-04/password"), {
      method: "POST",
      headers: HEADERS,
      body,
    });
    assertEquals(posted.status, 200);
    await posted.body?.cancel();
    // A second post (a racing retry, or a second boot that skipped is_password_set): 409.
    const second = await fetch(url("openstack/2013-04-04/password"), {
      method: "POST",
      headers: HEADERS,
      body: new TextEncoder().encode(btoa("another")),
    });
    assertEquals(second.status, 409);
    assertEquals((await second.json()).error, "password_already_set");
    // is_password_set on the next boot: true, so no post.
    assertEquals((await get("openstack/2013-04-04/password")).body, encrypted.toBase64());
    // 4. user data: none configured
    assertEquals((await get("openstack/latest/user_data")).status, 404);

    // The sidecar restarts in the same pod: the password is still there.
    await sidecar.stop();
    sidecar = await startSidecar(dir);
    assertEquals((await get("openstack/latest/password")).body, encrypted.toBase64());

    // The owner: `imds-sidecar password | base64 -d | openssl pkeyutl -decrypt -inkey id_rsa`.
    const [command, ...args] = await sidecarCommand();
    const printed = await new Deno.Command(command, {
      args: [...args, "password"],
      env: sidecarEnv(dir, 0),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(printed.success, new TextDecoder().decode(printed.stderr));
    const ciphertext = new TextDecoder().decode(printed.stdout).trim();
    assertEquals(ciphertext, encrypted.toBase64());
    const decrypted = await run(
      "openssl",
      ["pkeyutl", "-decrypt", "-inkey", `${dir}/id_rsa`],
      Uint8Array.fromBase64(ciphertext),
    );
    assertEquals(new TextDecoder().decode(decrypted), password);
  } finally {
    await sidecar.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
