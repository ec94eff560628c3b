/** The schema checks themselves catch what they are meant to catch. */
import { assertEquals, assertMatch } from "../../testing/assert.ts";
import { schemaProblems } from "../../testing/k8s_schema.ts";
import type { K8sObject } from "../../testing/helm.ts";

const deployment = (container: Record<string, unknown>): K8sObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "d" },
  spec: {
    selector: { matchLabels: { a: "b" } },
    template: { metadata: { labels: { a: "b" } }, spec: { containers: [container] } },
  },
});

Deno.test("a valid Deployment has no schema problems", () => {
  assertEquals(
    schemaProblems(deployment({ name: "c", image: "i", ports: [{ containerPort: 1 }] })),
    [],
  );
});

Deno.test("an unknown field in a core object is reported with its path", () => {
  const problems = schemaProblems(deployment({ name: "c", image: "i", securityContxt: {} }));
  assertEquals(problems, [
    "Deployment/d: unknown field .spec.template.spec.containers[0].securityContxt",
  ]);
});

Deno.test("a wrong type in a core object is reported", () => {
  const problems = schemaProblems(
    deployment({ name: "c", image: "i", ports: [{ containerPort: "x" }] }),
  );
  assertEquals(problems.length, 1);
  assertMatch(problems[0], /Deployment\/d: .*containerPort/);
});

Deno.test("a cert-manager Certificate with a bad enum is reported", () => {
  const problems = schemaProblems({
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: "c" },
    spec: { secretName: "s", issuerRef: { name: "i" }, privateKey: { algorithm: "DSA" } },
  });
  assertEquals(problems.length, 1);
  assertMatch(problems[0], /Certificate\/c: .*algorithm/);
});

Deno.test("an object of an unknown kind is reported rather than passed", () => {
  assertEquals(
    schemaProblems({ apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "t" } }),
    [
      "Thing/t: no schema known for example.com/v1/Thing",
    ],
  );
});
