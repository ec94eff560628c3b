/**
 * The suite as a user starts it, as a real process: without a named context,
 * or pointed at a cluster that is unreachable or lacks what the suite needs,
 * it stops at once with exit status 2 and a message saying what it needs,
 * before creating anything; the kubeconfig's current context is never used.
 */

import { assert, assertEquals, assertStringIncludes } from "../testing/assert.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function runSuite(args: string[], env: Record<string, string>): Promise<Run> {
  const inherited: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) inherited[name] = value;
  }
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { ...inherited, NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** A port nothing listens on: bound, then released. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function kubeconfig(contexts: Record<string, string>, current: string): string {
  const names = Object.keys(contexts);
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: names.map((n) => ({
      name: n,
      // client-node speaks plain HTTP only with TLS verification off.
      cluster: { server: contexts[n], "insecure-skip-tls-verify": contexts[n].startsWith("http:") },
    })),
    users: [{ name: "u", user: { token: "e2e-test" } }],
    contexts: names.map((n) => ({ name: n, context: { cluster: n, user: "u" } })),
    "current-context": current,
  });
}

async function withKubeconfig(
  contexts: Record<string, string>,
  current: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "imds-e2e-kubeconfig-" });
  try {
    await Deno.writeTextFile(path, kubeconfig(contexts, current));
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

/** An API server that knows only /version: reachable, but without KubeVirt and the rest. */
function bareApiServer(): { url: string; requests: string[]; close(): Promise<void> } {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}`);
    if (url.pathname === "/version") {
      return Response.json({ major: "1", minor: "33", gitVersion: "v1.33.1" });
    }
    if (/^\/apis\/apps\/v1\/namespaces\/[^/]+\/deployments$/.test(url.pathname)) {
      return Response.json({ kind: "DeploymentList", apiVersion: "apps/v1", items: [] });
    }
    return Response.json(
      { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 },
      { status: 404 },
    );
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

Deno.test("e2e process: without a named context it refuses to start", async () => {
  await withKubeconfig(
    { "kind-current": `https://127.0.0.1:${closedPort()}` },
    "kind-current",
    async (path) => {
      const run = await runSuite([], { KUBECONFIG: path });
      assertEquals(run.code, 2);
      assertStringIncludes(run.stderr, "no kube context named: pass --context NAME");
      assertStringIncludes(run.stderr, "the current context is never used");
      assertEquals(run.stdout, "");
    },
  );
});

Deno.test("e2e process: an unreachable cluster stops the run, saying what it needs", async () => {
  const server = `https://127.0.0.1:${closedPort()}`;
  await withKubeconfig({ "kind-imds": server }, "kind-imds", async (path) => {
    const run = await runSuite(["--context", "kind-imds"], { KUBECONFIG: path });
    assertEquals(run.code, 2, run.stderr);
    assertStringIncludes(
      run.stderr,
      `cannot reach the Kubernetes API of context "kind-imds" at ${server}`,
    );
    assertStringIncludes(run.stderr, "ECONNREFUSED");
    assertStringIncludes(run.stderr, "KubeVirt, cert-manager, Multus");
    assertStringIncludes(run.stderr, "`task up`");
  });
});

Deno.test("e2e process: KIND_CLUSTER_NAME picks kind-<name>, never the current context", async () => {
  const current = bareApiServer();
  try {
    const contexts = {
      "kind-current": current.url,
      "kind-other": `https://127.0.0.1:${closedPort()}`,
    };
    await withKubeconfig(contexts, "kind-current", async (path) => {
      const run = await runSuite([], { KUBECONFIG: path, KIND_CLUSTER_NAME: "other" });
      assertEquals(run.code, 2, run.stderr);
      assertStringIncludes(run.stderr, 'context "kind-other"');
      const missing = await runSuite([], { KUBECONFIG: path, KIND_CLUSTER_NAME: "absent" });
      assertEquals(missing.code, 2);
      assertStringIncludes(
        missing.stderr,
        'kube context "kind-absent" is not in the kubeconfig (contexts there: kind-current, kind-other)',
      );
    });
    assertEquals(current.requests, [], "the current context's cluster was contacted");
  } finally {
    await current.close();
  }
});

Deno.test("e2e process: a cluster without KubeVirt, Multus, cert-manager or the chart is refused", async () => {
  const api = bareApiServer();
  try {
    await withKubeconfig({ "kind-bare": api.url }, "kind-bare", async (path) => {
      const run = await runSuite(
        ["--context=kind-bare", "--virtctl", "/nonexistent/virtctl"],
        { KUBECONFIG: path },
      );
      assertEquals(run.code, 2, run.stderr);
      assertStringIncludes(
        run.stderr,
        `context "kind-bare" (${api.url}, Kubernetes v1.33.1) is missing:`,
      );
      for (
        const needed of [
          "KubeVirt (`task kubevirt`): virtualmachines.kubevirt.io is not served (HTTP 404 NotFound)",
          "Multus (`task multus`)",
          "cert-manager (`task cert-manager`)",
          "the kubevirt-imds webhook in namespace kubevirt-imds (`task deploy`, or --imds-namespace NS): no ready Deployment",
          'virtctl: not found at "/nonexistent/virtctl"',
        ]
      ) {
        assertStringIncludes(run.stderr, needed);
      }
    });
    // It only looked: nothing was created, changed or deleted.
    assert(api.requests.length > 0);
    assertEquals(api.requests.filter((r) => !r.startsWith("GET ")), []);
  } finally {
    await api.close();
  }
});
