import { assertEquals } from "../testing/assert.ts";
import { parseManifests } from "../testing/manifests.ts";
import { forRun, RUN_LABEL } from "./manifests.ts";

const text = `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa
---
# comment-only documents are skipped
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm
  labels: { a: b }
spec:
  template:
    metadata:
      annotations: { x: y }
    spec: {}
`;

Deno.test("manifests: a run's copy is namespaced and labelled, the original untouched", () => {
  const objects = parseManifests(text, "t.yaml");
  const copy = forRun(objects, "imds-e2e-1", "1");
  assertEquals(copy.map((o) => o.metadata.namespace), ["imds-e2e-1", "imds-e2e-1"]);
  assertEquals(copy[1].metadata.labels, { a: "b", [RUN_LABEL]: "1" });
  const template = (copy[1].spec as { template: { metadata: Record<string, unknown> } }).template;
  assertEquals(template.metadata, { annotations: { x: "y" }, labels: { [RUN_LABEL]: "1" } });
  assertEquals(objects[0].metadata.namespace, undefined);
});
