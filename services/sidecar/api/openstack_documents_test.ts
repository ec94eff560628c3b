import { assertEquals } from "../../../testing/assert.ts";
import { metaDataJson } from "./openstack_documents.ts";

const identity = { namespace: "team-a", vmName: "win-1", serviceAccountName: "default" };

Deno.test("meta_data.json's meta: the labels, then the custom metadata, which wins on a clash", () => {
  const document = metaDataJson({
    identity,
    keys: [],
    labels: { app: "web", role: "label", "example.com/tier": "frontend" },
    meta: { role: "custom", owner: "ops" },
  });
  assertEquals(document.meta, {
    app: "web",
    role: "custom",
    "example.com/tier": "frontend",
    owner: "ops",
  });
});

Deno.test("meta_data.json's meta: admin_username and admin_pass come only from their own sources", () => {
  const clashing = {
    identity,
    keys: [],
    labels: { admin_username: "label-admin", admin_pass: "label-password" },
    meta: { admin_username: "meta-admin", admin_pass: "meta-password", owner: "ops" },
  };
  assertEquals(metaDataJson(clashing).meta, { owner: "ops" });
  const configured = metaDataJson({
    ...clashing,
    adminUsername: "Administrator",
    adminPassword: "from-the-secret",
  });
  assertEquals(configured.meta, { owner: "ops", admin_username: "Administrator" });
  assertEquals(configured.admin_pass, "from-the-secret");
});

Deno.test("meta_data.json's meta is an empty map without labels or custom metadata", () => {
  assertEquals(metaDataJson({ identity, keys: [] }).meta, {});
});
