/**
 * Taskfile.yml drives the contributor loop against a kind cluster. These
 * checks keep it safe on a machine with other clusters: every kubectl, helm,
 * kind and virtctl call names the cluster; versions are pinned; the chart
 * values it sets exist; the images it builds are the ones the chart runs.
 */

import { parse as parseYaml } from "yaml";
import { assert, assertEquals } from "../testing/assert.ts";

const ROOT = new URL("../", import.meta.url);
const taskfile = parseYaml(await Deno.readTextFile(new URL("Taskfile.yml", ROOT)));
const chartValues = parseYaml(await Deno.readTextFile(new URL("chart/values.yaml", ROOT)));

const CONTEXT = "kind-{{.KIND_CLUSTER_NAME}}";
const CLUSTER = "{{.KIND_CLUSTER_NAME}}";

interface ToolCall {
  tool: string;
  words: string[];
  where: string;
}

/** Every kubectl/helm/kind/virtctl call in a shell snippet, cut at the shell's separators. */
function toolCalls(script: string, where: string): ToolCall[] {
  const calls: ToolCall[] = [];
  const pattern = /(?:^|[\s;|&(`])(kubectl|helm|kind|virtctl)(?=\s)/g;
  for (const match of script.matchAll(pattern)) {
    const start = match.index! + match[0].length - match[1].length;
    const rest = script.slice(start);
    const end = rest.search(/;|&&|\|\||\||\)|`|\n|$/);
    calls.push({ tool: match[1], words: rest.slice(0, end).trim().split(/\s+/), where });
  }
  return calls;
}

/** The value of `flag` in `words` (`--flag value` or `--flag=value`). */
function flagValue(words: string[], flag: string): string | undefined {
  for (let i = 0; i < words.length; i++) {
    if (words[i] === flag) return words[i + 1];
    if (words[i].startsWith(`${flag}=`)) return words[i].slice(flag.length + 1);
  }
  return undefined;
}

/** What is wrong with one call: the cluster it targets must be named. */
function callProblem(call: ToolCall): string | undefined {
  const [tool, ...args] = call.words;
  const shown = `${call.where}: ${call.words.join(" ")}`;
  switch (tool) {
    case "kubectl":
      // Reading or restoring the kubeconfig's current-context talks to no cluster.
      if (args[0] === "config" && ["current-context", "use-context"].includes(args[1])) return;
      return flagValue(args, "--context") === CONTEXT
        ? undefined
        : `no --context ${CONTEXT}: ${shown}`;
    case "helm":
      if (["version", "lint", "template", "package"].includes(args[0])) return;
      return flagValue(args, "--kube-context") === CONTEXT
        ? undefined
        : `no --kube-context ${CONTEXT}: ${shown}`;
    case "kind":
      if (args[0] === "version") return; // the CLI's own version talks to no cluster
      return flagValue(args, "--name") === CLUSTER ? undefined : `no --name ${CLUSTER}: ${shown}`;
    case "virtctl":
      return flagValue(args, "--context") === CONTEXT ? undefined : `no --context: ${shown}`;
  }
  return `unknown tool in ${shown}`;
}

type Command = string | { cmd?: string; task?: string; sh?: string };

/** Every shell snippet of the Taskfile with where it is. */
function scripts(): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(taskfile.vars ?? {})) {
    const sh = (value as { sh?: string })?.sh;
    if (sh) found.push([sh, `vars.${name}`]);
  }
  for (
    const [name, task] of Object.entries(taskfile.tasks as Record<string, Record<string, unknown>>)
  ) {
    for (const key of ["cmds", "status", "preconditions"]) {
      for (const [i, entry] of ((task[key] ?? []) as Command[]).entries()) {
        const text = typeof entry === "string" ? entry : entry.cmd ?? entry.sh;
        if (text) found.push([text, `tasks.${name}.${key}[${i}]`]);
      }
    }
  }
  return found;
}

const calls = scripts().flatMap(([text, where]) => toolCalls(text, where));

Deno.test("taskfile: the call checker flags calls that would use the current context", () => {
  const bad = [
    ...toolCalls("kubectl get pods", "a"),
    ...toolCalls("x=$(kubectl --context kind-other get ns)", "b"),
    ...toolCalls("helm upgrade --install r ./chart", "c"),
    ...toolCalls("kind load docker-image img", "d"),
    ...toolCalls("true && virtctl console vm", "e"),
    ...toolCalls("kubectl config set-context --current --namespace x", "f"),
  ];
  assertEquals(bad.map((c) => callProblem(c) !== undefined), [true, true, true, true, true, true]);
  const good = [
    ...toolCalls(`kubectl --context ${CONTEXT} get ns | wc -l`, "a"),
    ...toolCalls(`helm --kube-context=${CONTEXT} upgrade --install r ./chart`, "b"),
    ...toolCalls(`for n in $(kind get nodes --name ${CLUSTER}); do :; done`, "c"),
    ...toolCalls('kubectl config use-context "$previous"', "d"),
  ];
  assertEquals(good.map(callProblem), [undefined, undefined, undefined, undefined]);
});

Deno.test("taskfile: every kubectl, helm, kind and virtctl call names the cluster", () => {
  assert(calls.length >= 10, `found only ${calls.length} calls: the checker misses some`);
  const problems = calls.map(callProblem).filter((p) => p !== undefined);
  assertEquals(problems, []);
  const tools = new Set(calls.map((c) => c.tool));
  assertEquals([...tools].sort(), ["helm", "kind", "kubectl"]);
});

Deno.test("taskfile: the loop from zero runs in order, and every step exists", () => {
  const tasks = taskfile.tasks as Record<string, { cmds?: Command[] }>;
  const up = (tasks.up.cmds ?? []).map((c) => (c as { task: string }).task);
  assertEquals(up, [
    "images-check",
    "cluster",
    "cni-plugins",
    "cert-manager",
    "kubevirt",
    "multus",
    "images",
    "load",
    "deploy",
  ]);
  for (const name of [...up, "e2e", "down", "virtctl", "redeploy", "test"]) {
    assert(tasks[name], `task ${name} is missing`);
  }
  assertEquals(taskfile.version, "3");
});

Deno.test("taskfile: versions are pinned, emulation is a switch", () => {
  const vars = taskfile.vars as Record<string, string>;
  for (
    const name of [
      "CERT_MANAGER_VERSION",
      "KUBEVIRT_VERSION",
      "MULTUS_VERSION",
      "CNI_PLUGINS_VERSION",
    ]
  ) {
    assert(/^v\d+\.\d+\.\d+$/.test(vars[name]), `${name} is not a pinned version: ${vars[name]}`);
  }
  // kind's docs ask for the node image by digest, from the release notes of the kind in use.
  assert(/^v\d+\.\d+\.\d+$/.test(vars.KIND_VERSION), `KIND_VERSION: ${vars.KIND_VERSION}`);
  assert(
    /^kindest\/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$/.test(vars.KIND_NODE_IMAGE),
    `kind node image not pinned by digest: ${vars.KIND_NODE_IMAGE}`,
  );
  const cluster = (taskfile.tasks.cluster.preconditions as Array<{ sh: string }>).map((p) => p.sh);
  assert(cluster.some((sh) => sh.includes("kind version") && sh.includes("{{.KIND_VERSION}}")));
  assert(cluster.some((sh) => sh.includes("{{.KIND_NODE_IMAGE}}") && sh.includes("@sha256:")));
  assertEquals(vars.MULTUS_IMAGE, "ghcr.io/k8snetworkplumbingwg/multus-cni:{{.MULTUS_VERSION}}");
  const all = scripts().map(([text]) => text).join("\n");
  for (const floating of ["/latest/", "/master/", "/main/", "stable.txt", ":latest"]) {
    assert(!all.includes(floating), `a download follows a moving target (${floating})`);
  }
  assert(all.includes('"useEmulation\\":$emulation'), "KubeVirt's useEmulation is set");
  assertEquals(vars.USE_EMULATION, '{{.USE_EMULATION | default "auto"}}');
});

Deno.test("taskfile: the images built are the ones the chart runs, with values that exist", () => {
  const vars = taskfile.vars as Record<string, string>;
  assertEquals(vars.SIDECAR_IMAGE, `${chartValues.sidecar.image.repository}:{{.IMAGE_TAG}}`);
  assertEquals(vars.WEBHOOK_IMAGE, `${chartValues.webhook.image.repository}:{{.IMAGE_TAG}}`);
  const helmCalls = calls.filter((c) => c.tool === "helm" && c.words.includes("upgrade"));
  assertEquals(helmCalls.length, 1);
  const words = helmCalls[0].words;
  assert(
    words.includes("--install") && words.includes("./chart"),
    "helm upgrade --install ./chart",
  );
  const sets = words.flatMap((w, i) => words[i - 1] === "--set" ? [w.split("=")[0]] : []);
  assert(sets.length > 0, "the deploy sets the image tags");
  for (const path of sets) {
    const value = path.split(".").reduce<unknown>(
      (node, key) => (node as Record<string, unknown> | undefined)?.[key],
      chartValues,
    );
    assert(value !== undefined, `--set ${path}: no such value in chart/values.yaml`);
  }
  const e2e = scripts().find(([, where]) => where.startsWith("tasks.e2e.cmds"))![0];
  assert(e2e.includes(`deno task e2e --context ${CONTEXT}`), "e2e names the context");
});

Deno.test("taskfile: every command is valid shell, and the kind config parses", async () => {
  for (const [text, where] of scripts()) {
    // Templates become plain words, as go-task renders them before the shell runs.
    const script = text.replace(/\{\{[^}]*\}\}/g, "TEMPLATE");
    const check = await new Deno.Command("sh", {
      args: ["-n", "-c", script],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(check.success, `${where}: ${new TextDecoder().decode(check.stderr)}\n${script}`);
  }
  const create = scripts().find(([text]) => text.includes("kind create cluster"))![0];
  const heredoc = /<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(create);
  assert(heredoc, "the kind config is a heredoc ending in EOF at the start of a line");
  const config = parseYaml(heredoc[1]);
  assertEquals([config.kind, config.apiVersion], ["Cluster", "kind.x-k8s.io/v1alpha4"]);
});

Deno.test("taskfile: the test VMs' cirros image is the one of the installed KubeVirt", async () => {
  const version = (taskfile.vars as Record<string, string>).KUBEVIRT_VERSION;
  let seen = 0;
  for await (const entry of Deno.readDir(new URL("deploy/test/", ROOT))) {
    if (!entry.name.endsWith(".yaml")) continue;
    const text = await Deno.readTextFile(new URL(`deploy/test/${entry.name}`, ROOT));
    for (const match of text.matchAll(/quay\.io\/kubevirt\/cirros-container-disk-demo:(\S+)/g)) {
      assertEquals(match[1], version, `${entry.name}: cirros image tag`);
      seen++;
    }
  }
  assert(seen >= 4, `found ${seen} cirros VMs`);
});

/**
 * Runs one Taskfile snippet in sh with its templates filled from `vars` and
 * the named commands replaced by shell functions; returns its exit status,
 * output, and what the stand-ins recorded in $CALLS.
 */
async function runSnippet(
  where: string[],
  vars: Record<string, string>,
  stubs: Record<string, string>,
): Promise<{ code: number; stderr: string; calls: string }> {
  const script = where.map((at) => {
    const found = scripts().find(([, place]) => place === at)?.[0];
    assert(found, `no snippet at ${at}`);
    return found;
  }).join("\n");
  const filled = script.replace(/\{\{\.(\w+)\}\}/g, (_, name) => {
    assert(name in vars, `${where} uses {{.${name}}}`);
    return vars[name];
  });
  const dir = await Deno.makeTempDir({ prefix: "imds-taskfile-" });
  try {
    const functions = Object.entries(stubs).map(([name, body]) => `${name}() { ${body}\n}`);
    const out = await new Deno.Command("sh", {
      args: ["-ec", `${functions.join("\n")}\n${filled}`],
      env: { CALLS: `${dir}/calls`, WORK: dir },
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    let calls = "";
    try {
      calls = await Deno.readTextFile(`${dir}/calls`);
    } catch {
      // nothing recorded
    }
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr), calls };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const MULTUS_VARS = {
  MULTUS_VERSION: "v4.2.2",
  MULTUS_IMAGE: "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
  KIND_CLUSTER_NAME: "imds",
};

Deno.test("taskfile: Multus's :snapshot image is rewritten to the release's before it is applied", async () => {
  const manifest = new URL("./fixtures/multus-daemonset-v4.2.2-images.yml", import.meta.url);
  const stubs = {
    curl: `cat "${manifest.pathname}"`,
    kubectl: 'echo "kubectl $*" >> "$CALLS"; cat >> "$CALLS"',
  };
  const ok = await runSnippet(["tasks.multus.cmds[0]"], MULTUS_VARS, stubs);
  assertEquals(ok.code, 0, ok.stderr);
  assert(ok.calls.startsWith("kubectl --context kind-imds apply -f -\n"), ok.calls);
  assert(!ok.calls.includes(":snapshot"), ok.calls);
  assertEquals(
    [...ok.calls.matchAll(/image: (\S+)/g)].map((m) => m[1]),
    [
      "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
      "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
    ],
  );
  // A manifest that no longer names the snapshot image stops the task instead of applying it.
  const changed = await runSnippet(["tasks.multus.cmds[0]"], MULTUS_VARS, {
    ...stubs,
    curl: "echo '        image: ghcr.io/k8snetworkplumbingwg/multus-cni:stable'",
  });
  assertEquals(changed.code, 1);
  assertEquals(changed.calls, "");
});

Deno.test("taskfile: images are built without attestations and loaded into kind from archives", async () => {
  const vars = taskfile.vars as Record<string, string>;
  assertEquals(
    vars.BUILD_FLAGS,
    '{{if eq .CONTAINER_TOOL "docker"}}--provenance=false --sbom=false{{end}}',
  );
  const builds = scripts().filter(([, where]) => where.startsWith("tasks.images.cmds"));
  assertEquals(builds.length, 2);
  for (const [text] of builds) assert(text.includes("build {{.BUILD_FLAGS}} -f Dockerfile."), text);
  const load = {
    IMAGES_DIR: "images",
    SIDECAR_IMAGE: "ghcr.io/kubevirt-imds/sidecar:0.1.0",
    WEBHOOK_IMAGE: "ghcr.io/kubevirt-imds/webhook:0.1.0",
    CONTAINER_TOOL: "docker",
    KIND_CLUSTER_NAME: "imds",
  };
  const LOAD = ["tasks.load.cmds[0]", "tasks.load.cmds[1]"];
  // `docker save` stand-in: an OCI archive whose index.json is $INDEX.
  const save = (index: string) =>
    `mkdir -p "$WORK/oci"; echo '${index}' > "$WORK/oci/index.json"; ` +
    'tar -cf "$3" -C "$WORK/oci" index.json';
  const kind = 'echo "kind $*" >> "$CALLS"';
  const plain = '{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json"}]}';
  const ok = await runSnippet(LOAD, load, { docker: save(plain), kind });
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(ok.calls.trim().split("\n"), [
    "kind load image-archive images/sidecar.tar --name imds",
    "kind load image-archive images/webhook.tar --name imds",
  ]);
  const attested = '{"manifests":[{"annotations":' +
    '{"vnd.docker.reference.type":"attestation-manifest"}}]}';
  const refused = await runSnippet(LOAD, load, { docker: save(attested), kind });
  assertEquals(refused.code, 1);
  assertEquals(refused.calls, "");
  assert(refused.stderr.includes("--provenance=false"), refused.stderr);
});
