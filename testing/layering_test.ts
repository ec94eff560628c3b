import { assert, assertEquals } from "./assert.ts";
import {
  type Edge,
  formatViolation,
  LAYERED_FOLDERS,
  layeringViolations,
  moduleEdges,
  typescriptFiles,
} from "./layering.ts";

const ROOT = new URL("../", import.meta.url);

const broken = (edges: Edge[]) => layeringViolations(edges).map(formatViolation);

Deno.test("layering rules: each forbidden import is reported with its edge", () => {
  const forbidden: Edge[] = [
    { from: "services/sidecar/kernel/netlink.ts", to: "services/sidecar/datapath/attach.ts" },
    { from: "services/sidecar/kernel/rtnetlink.ts", to: "services/shared/contract.ts" },
    { from: "services/sidecar/kernel/libc.ts", to: "services/sidecar/config.ts" },
    { from: "services/sidecar/kernel/libc.ts", to: "npm:yaml@2.9.1" },
    { from: "services/sidecar/api/routes.ts", to: "services/sidecar/datapath/attach.ts" },
    { from: "services/sidecar/api/server.ts", to: "services/sidecar/kernel/rtnetlink.ts" },
    { from: "services/sidecar/http/connection.ts", to: "services/sidecar/api/routes.ts" },
    { from: "services/sidecar/http/connection_limits.ts", to: "services/sidecar/kernel/libc.ts" },
    { from: "services/sidecar/http/http1_server.ts", to: "services/sidecar/config.ts" },
    { from: "services/webhook/pod_mutation.ts", to: "testing/assert.ts" },
    { from: "services/shared/log.ts", to: "bench/lib.ts" },
    { from: "services/sidecar/run.ts", to: "services/sidecar/main_test.ts" },
    { from: "services/sidecar/config.ts", to: "services/webhook/config.ts" },
    { from: "services/webhook/sidecar_spec.ts", to: "services/sidecar/config.ts" },
    { from: "deploy/images/images_test.ts", to: "e2e/checks.ts" },
    { from: "bench/main.ts", to: "tools/demo.ts" },
    { from: "testing/helm.ts", to: "chart/tests/cases.ts" },
  ];
  const found = layeringViolations(forbidden);
  assertEquals(
    forbidden.filter((edge) => !found.some((violation) => violation.edge === edge)),
    [],
    "edges not reported",
  );
  assertEquals(
    broken([forbidden[0]]),
    [
      "services/sidecar/kernel/netlink.ts → services/sidecar/datapath/attach.ts: kernel/ knows " +
      "nothing about KubeVirt or the sidecar's other layers: it imports only kernel/ and " +
      "services/shared/log.ts (no datapath/, http/, sidecar top level, contract.ts names or " +
      "packages)",
    ],
  );
  assertEquals(broken([{ from: "bench/main.ts", to: "tools/demo.ts" }]), [
    "bench/main.ts → tools/demo.ts: testing/, bench/, e2e/, tools/, deploy/ and chart/tests/ " +
    "share helpers only through testing/",
  ]);
});

Deno.test("layering rules: the imports the tree is built on are allowed", () => {
  assertEquals(
    broken([
      { from: "services/sidecar/kernel/rtnetlink.ts", to: "services/sidecar/kernel/netlink.ts" },
      { from: "services/sidecar/kernel/nftables.ts", to: "services/shared/log.ts" },
      { from: "services/sidecar/datapath/attach.ts", to: "services/sidecar/kernel/rtnetlink.ts" },
      { from: "services/sidecar/datapath/attach.ts", to: "services/shared/contract.ts" },
      { from: "services/sidecar/http/connection.ts", to: "services/sidecar/http/body_stream.ts" },
      { from: "services/sidecar/http/connection.ts", to: "services/shared/log.ts" },
      { from: "services/sidecar/api/server.ts", to: "services/sidecar/http/http1_server.ts" },
      { from: "services/sidecar/api/routes.ts", to: "services/sidecar/config.ts" },
      { from: "services/sidecar/run.ts", to: "services/sidecar/datapath/attach.ts" },
      { from: "services/webhook/main.ts", to: "services/shared/settings.ts" },
      { from: "services/webhook/pod_mutation.ts", to: "npm:fast-json-patch@3.1.1" },
      { from: "services/sidecar/kernel/libc_test.ts", to: "testing/assert.ts" },
      { from: "services/sidecar/kernel/rtnetlink_test.ts", to: "testing/netns/harness.ts" },
      { from: "testing/netns/scenarios.ts", to: "services/sidecar/datapath/attach.ts" },
      { from: "bench/sidecar_network.ts", to: "testing/netns/topology.ts" },
      { from: "deploy/images/images_test.ts", to: "testing/sidecar_container.ts" },
      { from: "deploy/images/images_test.ts", to: "deploy/images/dockerfile.ts" },
      { from: "e2e/scenarios.ts", to: "e2e/checks.ts" },
      { from: "chart/tests/chart_test.ts", to: "testing/helm.ts" },
    ]),
    [],
  );
});

Deno.test("layering: no module of the repository imports across the rules", async () => {
  const files = await typescriptFiles(ROOT, LAYERED_FOLDERS);
  for (const entry of ["services/sidecar/main.ts", "services/webhook/main.ts"]) {
    assert(files.includes(entry), `${entry} is among the modules checked`);
  }
  const edges = await moduleEdges(ROOT, files);
  assert(
    edges.some((edge) => edge.from === "services/sidecar/main.ts"),
    "the sidecar's imports were read",
  );
  assertEquals(layeringViolations(edges).map(formatViolation), []);
});
