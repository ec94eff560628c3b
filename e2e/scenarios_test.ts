import { assert, assertEquals } from "../testing/assert.ts";
import { readManifest } from "../testing/manifests.ts";
import { SCENARIOS } from "./options.ts";
import { SCENARIO_CHECKS, SCENARIO_FILES } from "./scenarios.ts";

/** Manifests no scenario can run: a Windows image cannot be redistributed, so kind has none. */
const NOT_IN_E2E = ["vm-windows-cloudbase-init.yaml"];

Deno.test("scenarios: each has a check and manifests that exist, and every test VM is used", async () => {
  assertEquals(Object.keys(SCENARIO_CHECKS).sort(), [...SCENARIOS].sort());
  assertEquals(Object.keys(SCENARIO_FILES).sort(), [...SCENARIOS].sort());
  const used = new Set(Object.values(SCENARIO_FILES).flat());
  for (const file of used) {
    const objects = await readManifest(file);
    assert(objects.length > 0, `${file} is empty`);
  }
  const present: string[] = [];
  for await (const entry of Deno.readDir(new URL("../deploy/test/", import.meta.url))) {
    if (entry.name.endsWith(".yaml") && !NOT_IN_E2E.includes(entry.name)) present.push(entry.name);
  }
  assertEquals([...used].sort(), present.sort(), "every deploy/test manifest is exercised");
});

Deno.test("scenarios: a Multus VM comes with its network, created before it", () => {
  const files = SCENARIO_FILES["no-dhcp"];
  assert(files.indexOf("net-attach-def-no-dhcp.yaml") < files.indexOf("vm-cirros-no-dhcp.yaml"));
});
