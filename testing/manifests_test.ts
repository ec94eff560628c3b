import { assertEquals, assertThrows } from "./assert.ts";
import { droppedFields, parseManifests } from "./manifests.ts";

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

Deno.test("manifests: multi-document YAML becomes objects", () => {
  const objects = parseManifests(text, "t.yaml");
  assertEquals(objects.map((o) => `${o.kind}/${o.metadata.name}`), [
    "ServiceAccount/sa",
    "VirtualMachine/vm",
  ]);
  assertThrows(() => parseManifests("a: [", "bad.yaml"), /bad.yaml document 1:/);
  assertThrows(() => parseManifests("kind: X\n", "x.yaml"), /not a Kubernetes object/);
});

Deno.test("manifests: fields a typed model drops are listed by path", () => {
  assertEquals(droppedFields({ a: 1, b: [{ c: 1 }] }, { a: 1, b: [{ c: 1 }] }), []);
  assertEquals(
    droppedFields({ a: 1, b: [{ c: 1, d: 2 }], e: { f: 1 } }, { a: 1, b: [{ c: 1 }] }),
    [".b[0].d", ".e"],
  );
});
