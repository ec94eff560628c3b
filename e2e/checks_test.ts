import { assertEquals } from "../testing/assert.ts";
import { identityProblems } from "./checks.ts";

Deno.test("identity: every expected field is compared", () => {
  const expected = { namespace: "e2e", vmName: "a", serviceAccountName: "sa-a" };
  assertEquals(identityProblems(JSON.stringify({ ...expected, podName: "p" }), expected), []);
  assertEquals(
    identityProblems(JSON.stringify({ ...expected, vmName: "b" }), expected),
    ['vmName is "b", expected "a"'],
  );
  assertEquals(identityProblems("oops", expected), ["identity is not JSON: oops"]);
});
