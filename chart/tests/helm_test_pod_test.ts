/**
 * The chart's `helm test` pod, run for real: its script (curl over TLS with
 * the serving certificate's CA) against the real webhook, started with the
 * exact arguments and config file the chart renders, on a certificate shaped
 * like the one cert-manager issues for the rendered Certificate.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";
import { type K8sObject, needsHelm, render } from "../../testing/helm.ts";
import { makeCertificateFiles, opensslAvailable } from "../../testing/certificates.ts";

const PREFIX = "imds-chart-tls-";
const WEBHOOK_MAIN = new URL("../../services/webhook/main.ts", import.meta.url).pathname;

const helm3 = await needsHelm("helm");
const hasOpenssl = await opensslAvailable();
if (!hasOpenssl) console.warn("skipping the helm test pod run: openssl is not on PATH");

type Started = { child: Deno.ChildProcess; output: Promise<string> };

/** Starts the webhook with the rendered Deployment's arguments, files moved under `root`. */
function startWebhook(deployment: K8sObject, root: string, port: number): Started {
  const container = deployment.spec.template.spec.containers[0];
  const mounts: { mountPath: string }[] = container.volumeMounts;
  const args = (container.args as string[]).map((arg) => {
    const [flag, value] = arg.split(/=(.*)/s, 2);
    if (flag === "--listen") return `--listen=127.0.0.1:${port}`;
    const mounted = mounts.some((m) => value?.startsWith(`${m.mountPath}/`));
    return mounted ? `${flag}=${root}${value}` : arg;
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WEBHOOK_MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decode = (s: ReadableStream<Uint8Array>) => new Response(s).text();
  const output = Promise.all([decode(child.stdout), decode(child.stderr)]).then(([o, e]) => o + e);
  return { child, output };
}

function stopWebhook(webhook: Started): void {
  try {
    webhook.child.kill("SIGTERM");
  } catch {
    // it has exited already
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs the test pod's script with the CA mounted at `caDir` and the Service reached at `port`. */
async function runTestScript(pod: K8sObject, caDir: string, port: number, retry = true) {
  const container = pod.spec.containers[0];
  const mountPath: string = container.volumeMounts[0].mountPath;
  const script = (container.args as string[]).join("\n").replaceAll(mountPath, caDir);
  // The Service name does not resolve here: send its connections to the local webhook.
  // Without retries, a refused certificate fails at once instead of after the script's retries.
  const last = retry ? "" : " --retry 0";
  const prelude = `curl() { command curl --connect-to "::127.0.0.1:${port}" "$@"${last}; }\n`;
  const out = await new Deno.Command("sh", {
    args: ["-c", prelude + script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    ok: out.success,
    output: decoder.decode(out.stdout) + decoder.decode(out.stderr),
  };
}

Deno.test({
  name: "the helm test pod's script reaches the real webhook over TLS, and fails on a wrong CA",
  ignore: helm3.ignore || !hasOpenssl,
  async fn() {
    const r = await render("helm");
    const deployment = r.ofKind("Deployment")[0];
    const pod = r.ofKind("Pod").find((p) => p.metadata.annotations?.["helm.sh/hook"] === "test");
    assert(pod, "a helm test pod is rendered");
    const certificate = r.ofKind("Certificate").find((c) =>
      c.spec.secretName === pod.spec.volumes[0].secret.secretName
    );
    assert(certificate, "the test pod mounts the serving certificate's Secret");
    const dnsNames = certificate.spec.dnsNames;
    const tls = await makeCertificateFiles({ dnsNames, caCommonName: "imds-test-ca" }, PREFIX);
    const wrongCa = await makeCertificateFiles({ dnsNames, caCommonName: "some-other-ca" }, PREFIX);

    // Lay the pod's files out as the Deployment mounts them.
    const root = await Deno.makeTempDir({ prefix: "imds-chart-pod-" });
    const container = deployment.spec.template.spec.containers[0];
    const mountOf = (name: string) =>
      container.volumeMounts.find((m: { name: string }) => m.name === name).mountPath;
    await Deno.mkdir(`${root}${mountOf("tls")}`, { recursive: true });
    await Deno.mkdir(`${root}${mountOf("config")}`, { recursive: true });
    await Deno.copyFile(tls.cert, `${root}${mountOf("tls")}/tls.crt`);
    await Deno.copyFile(tls.key, `${root}${mountOf("tls")}/tls.key`);
    const configMap = r.ofKind("ConfigMap")[0];
    await Deno.writeTextFile(
      `${root}${mountOf("config")}/config.yaml`,
      configMap.data["config.yaml"],
    );

    const port = freePort();
    const webhook = startWebhook(deployment, root, port);
    try {
      const good = await runTestScript(pod, tls.dir, port);
      assert(good.ok, `the test script failed:\n${good.output}`);
      assertStringIncludes(good.output, "/healthz");
      assertStringIncludes(good.output, "/readyz");

      const bad = await runTestScript(pod, wrongCa.dir, port, false);
      assertEquals(bad.ok, false, "the script must fail when the CA does not match");
      assertMatch(bad.output, /certificate|SSL/i);
    } catch (error) {
      stopWebhook(webhook);
      throw new Error(`${(error as Error).message}\nwebhook output:\n${await webhook.output}`);
    } finally {
      stopWebhook(webhook);
      await webhook.child.status;
      await webhook.output;
      for (const dir of [root, tls.dir, wrongCa.dir]) await Deno.remove(dir, { recursive: true });
    }
  },
});
