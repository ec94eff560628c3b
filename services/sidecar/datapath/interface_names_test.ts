import { assert, assertEquals, assertNotEquals } from "../../../testing/assert.ts";
import {
  isVmBridgeName,
  kubevirtTapName,
  MAX_INTERFACE_NAME,
  nameHash,
  vethNames,
} from "./interface_names.ts";

Deno.test("veth names for the primary and legacy Multus bridges keep the bridge's suffix", () => {
  assertEquals(vethNames("k6t-eth0"), { sidecar: "imds-eth0", bridgeSide: "imdb-eth0" });
  assertEquals(vethNames("k6t-net1"), { sidecar: "imds-net1", bridgeSide: "imdb-net1" });
});

Deno.test("veth names for hashed Multus bridges fit in 15 bytes and differ per bridge", () => {
  const a = vethNames("k6t-1a2b3c4d5e6");
  const b = vethNames("k6t-1a2b3c4d5e7");
  for (const names of [a, b]) {
    assert(names.sidecar.length <= MAX_INTERFACE_NAME, names.sidecar);
    assert(names.bridgeSide.length <= MAX_INTERFACE_NAME, names.bridgeSide);
    assertEquals(names.sidecar.slice(5), names.bridgeSide.slice(5));
  }
  assertNotEquals(a.sidecar, b.sidecar);
  assertEquals(vethNames("k6t-1a2b3c4d5e6"), a, "the same bridge always gets the same names");
});

Deno.test("bridges outside the k6t- scheme get hashed names, never the raw name", () => {
  const names = vethNames("br-custom-long1");
  assertEquals(names.sidecar, `imds-${nameHash("br-custom-long1").slice(0, 10)}`);
  assert(names.sidecar.length <= MAX_INTERFACE_NAME);
});

Deno.test("nameHash is FNV-1a 64 (known vector)", () => {
  assertEquals(nameHash(""), "cbf29ce484222325");
  assertEquals(nameHash("a"), "af63dc4c8601ec8c");
});

Deno.test("isVmBridgeName accepts k6t-* only", () => {
  assert(isVmBridgeName("k6t-eth0"));
  assert(isVmBridgeName("k6t-1a2b3c4d5e6"));
  assert(!isVmBridgeName("k6t-"));
  assert(!isVmBridgeName("eth0"));
  assert(!isVmBridgeName("imdb-eth0"));
});

Deno.test("KubeVirt's tap names are derived from the bridge name", () => {
  assertEquals(kubevirtTapName("k6t-eth0"), "tap0");
  assertEquals(kubevirtTapName("k6t-net1"), "tap1");
  assertEquals(kubevirtTapName("k6t-16477688c0e"), "tap16477688c0e");
  assertEquals(kubevirtTapName("br0"), undefined);
});
