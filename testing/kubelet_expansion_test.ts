/** The kubelet's expansion against the cases of Kubernetes' own expand_test.go, and on bytes. */
import { assertEquals } from "./assert.ts";
import { expand, expandText, lookupIn } from "./kubelet_expansion.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const encoder = new TextEncoder();

// expand_test.go, doExpansionTest: [name, input, expected].
const CASES: [string, string, string][] = [
  ["whole string", "$(VAR_A)", "A"],
  ["repeat", "$(VAR_A)-$(VAR_A)", "A-A"],
  ["beginning", "$(VAR_A)-1", "A-1"],
  ["middle", "___$(VAR_B)___", "___B___"],
  ["end", "___$(VAR_C)", "___C"],
  ["compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"],
  ["escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"],
  ["compound escape", "$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"],
  ["mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"],
  ["backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"],
  ["backslash escape ignored (two)", "foo\\\\$(VAR_C)bar", "foo\\\\Cbar"],
  ["lots of backslashes", "foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"],
  ["nested var references", "$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"],
  ["nested var references second type", "$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"],
  ["value is a reference", "$(VAR_REF)", "$(VAR_A)"],
  ["value is a reference x 2", "%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"],
  ["empty var", "foo$(VAR_EMPTY)bar", "foobar"],
  ["unterminated expression", "foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"],
  ["expression without operator", "f00__(VAR_A)__", "f00__(VAR_A)__"],
  ["shell special vars pass through", "$?_boo_$!", "$?_boo_$!"],
  ["bare operators are ignored", "$VAR_A", "$VAR_A"],
  ["undefined vars are passed through", "$(VAR_DNE)", "$(VAR_DNE)"],
  ["multiple (even) operators, var undefined", "$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"],
  ["multiple (even) operators, var defined", "$$$$$$(VAR_A)", "$$$(VAR_A)"],
  ["multiple (odd) operators, var undefined", "$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"],
  ["multiple (odd) operators, var defined", "$$$$$$$(VAR_A)", "$$$A"],
  ["missing open expression", "$VAR_A)", "$VAR_A)"],
  ["shell syntax ignored", "${VAR_A}", "${VAR_A}"],
  ["trailing incomplete expression not consumed", "$(VAR_B)_______$(A", "B_______$(A"],
  [
    "trailing incomplete expression, no content, is not consumed",
    "$(VAR_C)_______$(",
    "C_______$(",
  ],
  ["operator at end of input string is preserved", "$(VAR_A)foobarzab$", "Afoobarzab$"],
  ["shell escaped incomplete expr", "foo-\\$(VAR_A", "foo-\\$(VAR_A"],
  ["lots of $( in middle", "--$($($($($--", "--$($($($($--"],
  ["lots of $( in beginning", "$($($($($--foo$(", "$($($($($--foo$("],
  ["lots of $( at end", "foo0--$($($($(", "foo0--$($($($("],
  ["escaped operators in variable names are not escaped", "$(foo$$var)", "$(foo$$var)"],
  ["newline not expanded", "\n", "\n"],
];

const CONTEXT = { VAR_A: "A", VAR_B: "B", VAR_C: "C", VAR_REF: "$(VAR_A)", VAR_EMPTY: "" };

Deno.test("expansion: every case of Kubernetes' expand_test.go (one context and two)", () => {
  const first = new Map(
    [["VAR_A", "A"], ["VAR_EMPTY", ""]].map(([k, v]) => [k, encoder.encode(v)]),
  );
  const second = new Map(
    [["VAR_B", "B"], ["VAR_C", "C"], ["VAR_REF", "$(VAR_A)"]].map((
      [k, v],
    ) => [k, encoder.encode(v)]),
  );
  for (const [name, input, expected] of CASES) {
    assertEquals(decode(expandText(input, CONTEXT)), expected, name);
    assertEquals(decode(expand(encoder.encode(input), lookupIn(first, second))), expected, name);
  }
});

Deno.test("expansion: env entries in order see the values expanded before them (TestMapReference)", () => {
  const env = new Map<string, Uint8Array>();
  for (const [name, value] of [["FOO", "bar"], ["ZOO", "$(FOO)-1"], ["BLU", "$(ZOO)-2"]]) {
    env.set(name, expand(encoder.encode(value), lookupIn(env)));
  }
  assertEquals(
    Object.fromEntries([...env].map(([name, value]) => [name, decode(value)])),
    { FOO: "bar", ZOO: "bar-1", BLU: "bar-1-2" },
  );
});

Deno.test("expansion works on bytes: `$` before a multi-byte character yields invalid UTF-8", () => {
  // Go's string(byte(0xE2)) is "â" (C3 A2); the rest of "€" (82 AC) follows as is.
  assertEquals([...expandText("5$€", {})], [0x35, 0x24, 0xc3, 0xa2, 0x82, 0xac]);
  let valid = true;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(expandText("5$€", {}));
  } catch {
    valid = false;
  }
  assertEquals(valid, false);
  // Escaped, the same text survives byte for byte.
  assertEquals(decode(expandText("5$$€ $$$$ $$(X)", { X: "no" })), "5$€ $$ $(X)");
});
