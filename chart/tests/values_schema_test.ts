/**
 * values.schema.json through real helm: wrong types, unknown keys and values
 * out of range are refused before anything renders, with a message that names
 * the setting and the problem (helm v3 and v4 word it differently).
 */
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { type HelmBinary, needsHelm, render, template, type Values } from "../../testing/helm.ts";

const options: Record<HelmBinary, { ignore: boolean }> = {
  helm: await needsHelm("helm"),
  helm4: await needsHelm("helm4"),
};

type BadValues = {
  what: string;
  values: Values;
  /** Where the problem is, as a path of keys. */
  path: string[];
  /** How helm v3 and helm v4 describe the problem. */
  problem: RegExp;
};

const BAD: BadValues[] = [
  {
    what: "a string where a number belongs",
    values: { webhook: { replicas: "two" } },
    path: ["webhook", "replicas"],
    problem: /Expected: integer, given: string|got string, want integer/,
  },
  {
    what: "a misspelt top-level key",
    values: { sidecars: {} },
    path: [],
    problem:
      /Additional property sidecars is not allowed|additional properties 'sidecars' not allowed/,
  },
  {
    what: "a misspelt nested key",
    values: { sidecar: { network: { arpResponse: false } } },
    path: ["sidecar", "network"],
    problem:
      /Additional property arpResponse is not allowed|additional properties 'arpResponse' not allowed/,
  },
  {
    what: "a failure policy the API server does not know",
    values: { webhook: { pods: { failurePolicy: "Sometimes" } } },
    path: ["webhook", "pods", "failurePolicy"],
    problem: /one of the following: "Ignore", "Fail"|one of 'Ignore', 'Fail'/,
  },
  {
    what: "a boolean given as a string",
    values: { sidecar: { network: { passt: "yes" } } },
    path: ["sidecar", "network", "passt"],
    problem: /Expected: boolean, given: string|got string, want boolean/,
  },
  {
    what: "a token lifetime the API server refuses",
    values: { token: { expirationSeconds: 60 } },
    path: ["token", "expirationSeconds"],
    problem: /greater than or equal to 600|got 60, want 600/,
  },
  {
    what: "an unknown log level",
    values: { sidecar: { logLevel: "verbose" } },
    path: ["sidecar", "logLevel"],
    problem: /"debug", "info", "warn", "error"|'debug', 'info', 'warn', 'error'/,
  },
  {
    what: "an issuer kind cert-manager does not have",
    values: { tls: { issuerRef: { name: "x", kind: "Vault" } } },
    path: ["tls", "issuerRef", "kind"],
    problem: /"Issuer", "ClusterIssuer"|'Issuer', 'ClusterIssuer'/,
  },
  {
    what: "a webhook timeout above the API server's limit",
    values: { vmSerialInjection: { timeoutSeconds: 60 } },
    path: ["vmSerialInjection", "timeoutSeconds"],
    problem: /less than or equal to 30|got 60, want 30/,
  },
  {
    what: "a resource quantity that is not one",
    values: { sidecar: { resources: { requests: { cpu: "lots" } } } },
    path: ["sidecar", "resources", "requests", "cpu"],
    problem: /Does not match pattern|does not match pattern/,
  },
  {
    what: "a certificate lifetime that is not a duration",
    values: { tls: { duration: "90 days" } },
    path: ["tls", "duration"],
    problem: /Does not match pattern|does not match pattern/,
  },
  {
    what: "vendor-data longer than the webhook passes to the sidecar",
    values: { vendorData: "#cloud-config\n" + "#".repeat(64_000) },
    path: ["vendorData"],
    problem: /String length must be less than or equal to 64000|maxLength: got 64,014, want 64,000/,
  },
  {
    what: "vendor-data holding a NUL, which no environment variable can carry",
    values: { vendorData: "#cloud-config\n\0" },
    path: ["vendorData"],
    problem: /Does not match pattern|does not match pattern/,
  },
  {
    what: "an allowed annotation of `*` alone, which would show a guest every annotation",
    values: { sidecar: { allowedAnnotations: ["example.com/owner", "*"] } },
    path: ["sidecar", "allowedAnnotations", "1"],
    problem: /Does not match pattern|does not match pattern/,
  },
  {
    what: "allowed annotations joined into one string",
    values: { sidecar: { allowedAnnotations: "example.com/a,example.com/b" } },
    path: ["sidecar", "allowedAnnotations"],
    problem: /Expected: array, given: string|got string, want array/,
  },
  {
    what: "a guest route idle time of zero",
    values: { sidecar: { network: { guestRouteIdleSeconds: 0 } } },
    path: ["sidecar", "network", "guestRouteIdleSeconds"],
    problem: /greater than or equal to 1|got 0, want 1/,
  },
  {
    what: "an audience list that is not a list",
    values: { token: { audiences: "vault" } },
    path: ["token", "audiences"],
    problem: /Expected: array, given: string|got string, want array/,
  },
];

/** The path as helm v3 (`a.b`, `(root)`) or helm v4 (`at '/a/b'`) prints it. */
function pathPattern(path: string[]): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const v3 = path.length ? `${path.map(escape).join("\\.")}:` : "\\(root\\):";
  const v4 = path.length ? `at '/${path.map(escape).join("/")}'` : "at ''";
  return new RegExp(`(^|\\s)(${v3}|${v4})`, "m");
}

for (const binary of ["helm", "helm4"] as const) {
  // Render every case at once (helm runs a few at a time); tests await theirs.
  if (!options[binary].ignore) { for (const bad of BAD) template(binary, bad.values); }

  Deno.test({
    name: `${binary}: the default values satisfy the schema`,
    ...options[binary],
    async fn() {
      assert((await render(binary)).objects.length > 0);
    },
  });

  for (const bad of BAD) {
    Deno.test({
      name: `${binary}: the schema refuses ${bad.what}, naming the setting`,
      ...options[binary],
      async fn() {
        const result = await template(binary, bad.values);
        assertEquals(result.ok, false, `helm accepted ${JSON.stringify(bad.values)}`);
        assertMatch(result.stderr, /values don't meet the specifications of the schema/);
        assertMatch(result.stderr, pathPattern(bad.path));
        assertMatch(result.stderr, bad.problem);
      },
    });
  }
}
