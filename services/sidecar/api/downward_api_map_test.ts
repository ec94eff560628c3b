import { assertEquals } from "../../../testing/assert.ts";
import { parseDownwardApiMap, unquoteGo } from "./downward_api_map.ts";

Deno.test('whole-map downward API files: one key="value" line per entry, Go-quoted', () => {
  const text =
    'app="web"\nimds.kubevirt.io/user-data="#cloud-config\\nruncmd: [\\"echo hi\\"]\\n"\n' +
    'meta.imds.kubevirt.io/motd="caf\u00e9 \\t\\u00a0\\x41"\n';
  assertEquals(parseDownwardApiMap(text), {
    map: {
      app: "web",
      "imds.kubevirt.io/user-data": '#cloud-config\nruncmd: ["echo hi"]\n',
      "meta.imds.kubevirt.io/motd": "caf\u00e9 \t\u00a0A",
    },
  });
  assertEquals(parseDownwardApiMap(""), { map: {} });
});

Deno.test("a malformed line is refused with its number", () => {
  assertEquals(parseDownwardApiMap('a="1"\nb=2\n'), {
    error: "line 2: the value of b is not a quoted string",
  });
  assertEquals(parseDownwardApiMap("no equals sign\n"), { error: 'line 1 is not key="value"' });
  // \xNN escapes spell bytes; an invalid UTF-8 sequence is refused.
  assertEquals(unquoteGo('"\\xe2\\x82\\xac"'), "\u20ac");
  assertEquals(unquoteGo('"\\xff"'), undefined);
  assertEquals(unquoteGo('"a"b"'), undefined);
});
