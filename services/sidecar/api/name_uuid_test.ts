import { assertEquals, assertMatch, assertNotEquals } from "../../../testing/assert.ts";
import { nameUuid, sha1 } from "./name_uuid.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("sha1 matches WebCrypto for inputs around the block boundaries", async () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const data = new Uint8Array(length).map((_, i) => (i * 31 + length) & 0xff);
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-1", data));
    assertEquals(hex(sha1(data)), hex(expected), `length ${length}`);
  }
});

Deno.test("name UUIDs are version 5, stable, and differ per name", () => {
  // Python: uuid.uuid5(uuid.NAMESPACE_URL, "https://example.com/")
  assertEquals(nameUuid("https://example.com/"), "dd2c1780-811a-5296-81c5-178a0ef488bc");
  const id = nameUuid("kubevirt://team-a/web-1");
  assertMatch(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assertEquals(nameUuid("kubevirt://team-a/web-1"), id);
  assertNotEquals(nameUuid("kubevirt://team-a/web-2"), id);
});
