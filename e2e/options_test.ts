import { assertEquals, assertThrows } from "../testing/assert.ts";
import { envFrom } from "../services/shared/settings.ts";
import {
  checkContextExists,
  parseE2eArgs,
  resolveContextName,
  SCENARIOS,
  selectedScenarios,
} from "./options.ts";

const noEnv = envFrom({});

Deno.test("context: the --context flag wins over the environment", () => {
  const env = envFrom({ IMDS_E2E_CONTEXT: "other", KIND_CLUSTER_NAME: "kind-two" });
  assertEquals(resolveContextName("kind-one", env), { name: "kind-one", source: "--context" });
});

Deno.test("context: IMDS_E2E_CONTEXT is used as given, before KIND_CLUSTER_NAME", () => {
  const env = envFrom({ IMDS_E2E_CONTEXT: "lab", KIND_CLUSTER_NAME: "imds" });
  assertEquals(resolveContextName(undefined, env), { name: "lab", source: "IMDS_E2E_CONTEXT" });
});

Deno.test("context: KIND_CLUSTER_NAME=NAME means context kind-NAME", () => {
  const env = envFrom({ KIND_CLUSTER_NAME: "imds" });
  assertEquals(resolveContextName(undefined, env).name, "kind-imds");
});

Deno.test("context: nothing named is refused, never falling back to the current context", () => {
  assertThrows(() => resolveContextName(undefined, noEnv), /current context is never used/);
  assertThrows(() => parseE2eArgs([], noEnv), /no kube context named/);
});

Deno.test("context: an empty name is refused naming where it came from", () => {
  assertThrows(() => resolveContextName("  ", noEnv), /--context is set but empty/);
  assertThrows(
    () => resolveContextName(undefined, envFrom({ KIND_CLUSTER_NAME: "" })),
    /KIND_CLUSTER_NAME is set but empty/,
  );
});

Deno.test("context: a name missing from the kubeconfig lists the ones there", () => {
  checkContextExists("kind-imds", ["kind-imds", "prod"]);
  assertThrows(
    () => checkContextExists("kind-x", ["kind-imds", "prod"]),
    /"kind-x" is not in the kubeconfig \(contexts there: kind-imds, prod\)/,
  );
  assertThrows(() => checkContextExists("kind-x", []), /contexts there: none/);
});

Deno.test("args: flags in both forms, defaults otherwise", () => {
  const options = parseE2eArgs(
    ["--context=kind-a", "--virtctl", "/opt/virtctl", "--boot-timeout=120", "--keep"],
    envFrom({}),
  );
  assertEquals(options, {
    context: "kind-a",
    contextSource: "--context",
    virtctl: "/opt/virtctl",
    bootTimeoutSeconds: 120,
    imdsNamespace: "kubevirt-imds",
    keep: true,
    only: [],
  });
  const fromEnv = parseE2eArgs([], envFrom({ KIND_CLUSTER_NAME: "b", VIRTCTL: "/v" }));
  assertEquals([fromEnv.context, fromEnv.virtctl, fromEnv.keep], ["kind-b", "/v", false]);
});

Deno.test("args: bad values and unknown flags are named", () => {
  assertThrows(() => parseE2eArgs(["--context"], noEnv), /--context needs a value/);
  assertThrows(() => parseE2eArgs(["--ctx", "x"], noEnv), /unknown argument "--ctx"/);
  assertThrows(
    () => parseE2eArgs(["--context=a", "--boot-timeout", "5"], noEnv),
    /--boot-timeout: expected whole seconds >= 30, got "5"/,
  );
  assertThrows(
    () => parseE2eArgs(["--context=a", "--only", "bridge,nope"], noEnv),
    /--only: unknown scenario nope/,
  );
});

Deno.test("args: --only keeps the suite's order", () => {
  const options = parseE2eArgs(["--context=a", "--only", "cloud-init,bridge"], noEnv);
  assertEquals(selectedScenarios(options), ["bridge", "cloud-init"]);
  assertEquals(selectedScenarios({ only: [] }), [...SCENARIOS]);
});
