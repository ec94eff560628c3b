import jsonpatch from "fast-json-patch";
import { assertEquals } from "../../testing/assert.ts";
import { addNested, appendAll, encodePatch, type JsonObject, pointer } from "./json_patch.ts";

Deno.test("pointer escapes ~ and / in keys", () => {
  assertEquals(
    pointer(["metadata", "annotations", "imds.kubevirt.io/user-data"]),
    "/metadata/annotations/imds.kubevirt.io~1user-data",
  );
  assertEquals(pointer(["a~b/c", "~1"]), "/a~0b~1c/~01");
  // The escaped pointer addresses the right member in a real JSON Patch implementation.
  const document = { metadata: { annotations: { "a/b~c": "old" } } };
  const patched = jsonpatch.applyPatch(structuredClone(document), [
    { op: "replace", path: pointer(["metadata", "annotations", "a/b~c"]), value: "new" },
  ]).newDocument;
  assertEquals(patched, { metadata: { annotations: { "a/b~c": "new" } } });
});

Deno.test("addNested creates missing objects, replaces null, refuses non-objects", () => {
  assertEquals(addNested({ spec: {} }, ["spec", "domain", "firmware"], 1), {
    op: "add",
    path: "/spec/domain",
    value: { firmware: 1 },
  });
  assertEquals(addNested({ spec: { domain: null } }, ["spec", "domain", "a/b"], 1), {
    op: "add",
    path: "/spec/domain",
    value: { "a/b": 1 },
  });
  assertEquals(addNested({ spec: { domain: { x: 1 } } }, ["spec", "domain", "a/b"], 1), {
    op: "add",
    path: "/spec/domain/a~1b",
    value: 1,
  });
  assertEquals(addNested({ spec: "nope" }, ["spec", "domain"], 1), undefined);
});

Deno.test("appendAll creates an absent array in one operation, else appends each item", () => {
  const document: JsonObject = { spec: { containers: [{ name: "a" }] } };
  const created = appendAll(document, ["spec", "volumes"], [{ name: "v1" }, { name: "v2" }])!;
  assertEquals(created, [{
    op: "add",
    path: "/spec/volumes",
    value: [{ name: "v1" }, { name: "v2" }],
  }]);
  const appended = appendAll(document, ["spec", "containers"], [{ name: "b" }, { name: "c" }])!;
  assertEquals(appended.map((operation) => operation.path), [
    "/spec/containers/-",
    "/spec/containers/-",
  ]);
  const result = jsonpatch.applyPatch(structuredClone(document), [...created, ...appended])
    .newDocument;
  assertEquals(result, {
    spec: {
      containers: [{ name: "a" }, { name: "b" }, { name: "c" }],
      volumes: [{ name: "v1" }, { name: "v2" }],
    },
  });
  assertEquals(appendAll({ spec: { volumes: {} } }, ["spec", "volumes"], [1]), undefined);
  assertEquals(appendAll({}, ["spec", "volumes"], [1]), [
    { op: "add", path: "/spec", value: { volumes: [1] } },
  ]);
});

Deno.test("encodePatch is base64 of the JSON, including non-ASCII text", () => {
  const operations = [{ op: "add" as const, path: "/a", value: "héllo ✓" }];
  const decoded = new TextDecoder().decode(
    Uint8Array.from(atob(encodePatch(operations)), (c) => c.charCodeAt(0)),
  );
  assertEquals(JSON.parse(decoded), operations);
});
