/** main.ts as a real process: start-up errors name the setting; a good start serves and stops on SIGTERM. */
import { assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";
import { makeCertificate, secretVolume } from "../../testing/webhook_certificates.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("main.ts: bad settings exit 2 with one line naming the setting", async () => {
  const certificate = await makeCertificate();
  const volume = await secretVolume(certificate);
  const config = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    const tls = ["--tls-cert", volume.certPath, "--tls-key", volume.keyPath];
    const unknown = await run([...tls, "--sidecar-image", "s:1", "--bogus", "1"]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.stderr, /^imds-webhook: --bogus: unknown flag/m);

    await Deno.writeTextFile(config, "sidecar:\n  rateLimit:\n    burst: 0\n");
    const burst = await run([...tls, "--sidecar-image=s:1", `--config=${config}`]);
    assertEquals(burst.code, 2);
    assertStringIncludes(
      burst.stderr,
      "imds-webhook: sidecar.rateLimit.burst: must be at least 1, got 0",
    );

    const noImage = await run(tls);
    assertEquals(noImage.code, 2);
    assertStringIncludes(noImage.stderr, "--sidecar-image: is required");

    const missingCert = await run([
      "--tls-cert",
      `${volume.dir}/missing.crt`,
      "--tls-key",
      volume.keyPath,
      "--sidecar-image",
      "s:1",
    ]);
    assertEquals(missingCert.code, 2);
    assertMatch(missingCert.stderr, /imds-webhook: --tls-cert: cannot read .*missing\.crt/);

    const badListen = await run([...tls, "--sidecar-image", "s:1"], {
      IMDS_WEBHOOK_LISTEN: "localhost",
    });
    assertEquals(badListen.code, 2);
    assertStringIncludes(badListen.stderr, "--listen: expected HOST:PORT");

    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const inUse = await run([...tls, "--sidecar-image", "s:1", "--listen", `127.0.0.1:${port}`]);
      assertEquals(inUse.code, 2);
      assertStringIncludes(
        inUse.stderr,
        `imds-webhook: --listen: 127.0.0.1:${port} is already in use`,
      );
    } finally {
      taken.close();
    }

    const help = await run(["--help"]);
    assertEquals(help.code, 0);
    assertStringIncludes(help.stdout, "--sidecar-image");
  } finally {
    await Deno.remove(config);
    await volume.remove();
  }
});

Deno.test("main.ts: starts from environment variables, serves HTTPS, drains and stops on SIGTERM", async () => {
  const certificate = await makeCertificate();
  const volume = await secretVolume(certificate);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: {
      IMDS_WEBHOOK_LISTEN: "127.0.0.1:0",
      IMDS_WEBHOOK_TLS_CERT: volume.certPath,
      IMDS_WEBHOOK_TLS_KEY: volume.keyPath,
      IMDS_WEBHOOK_SIDECAR_IMAGE: "ghcr.io/kubevirt-imds/sidecar:0.1.0",
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const readUntil = async (message: string): Promise<Record<string, unknown>> => {
    while (true) {
      const newline = buffered.indexOf("\n");
      if (newline !== -1) {
        const record = JSON.parse(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (record.msg === message) return record;
        continue;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error(`the webhook exited before logging "${message}"`);
      buffered += value;
    }
  };
  const client = Deno.createHttpClient({ caCerts: [certificate.caPem] });
  try {
    const listening = await readUntil("webhook listening");
    const port = Number(String(listening.address).split(":").at(-1));
    const response = await fetch(`https://127.0.0.1:${port}/readyz`, { client });
    assertEquals([response.status, await response.json()], [200, { status: "ready" }]);
    child.kill("SIGTERM");
    await readUntil("stopping: reporting not ready, then finishing requests in flight");
    // While it drains, it still answers, but no longer as ready.
    const draining = await fetch(`https://127.0.0.1:${port}/readyz`, { client });
    assertEquals([draining.status, await draining.json()], [503, {
      error: "not_ready",
      message: "shutting down",
    }]);
    await readUntil("stopped");
    assertEquals((await child.status).code, 0);
  } finally {
    client.close();
    await lines.cancel();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await volume.remove();
  }
});
