/**
 * The chart's documentation stays true: every value in values.yaml carries a
 * `# --` description where it is defined, chart/README.md's values table lists
 * every value with its real default, and the project README points there.
 */
import { parse as parseYaml } from "yaml";
import { assert, assertEquals } from "../../testing/assert.ts";
import { CHART_DIR } from "../../testing/helm.ts";

const valuesText = await Deno.readTextFile(`${CHART_DIR}/values.yaml`);
const values = parseYaml(valuesText) as Record<string, unknown>;
const chartReadme = await Deno.readTextFile(`${CHART_DIR}/README.md`);
const projectReadme = await Deno.readTextFile(`${CHART_DIR}/../README.md`);

type Key = { path: string; documented: boolean };

/** Keys of values.yaml in order, with whether a `# --` comment block precedes them. */
function keysOf(text: string): Key[] {
  const keys: Key[] = [];
  const stack: { indent: number; key: string }[] = [];
  let documented = false;
  for (const line of text.split("\n")) {
    if (/^\s*# -- /.test(line)) documented = true;
    else if (/^\s*#/.test(line)) continue;
    else if (line.trim() === "") documented = false;
    else {
      const match = /^(\s*)([A-Za-z][\w]*):/.exec(line);
      if (!match) continue; // list items and block scalars
      const indent = match[1].length;
      while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
      stack.push({ indent, key: match[2] });
      keys.push({ path: stack.map((s) => s.key).join("."), documented });
      documented = false;
    }
  }
  return keys;
}

function valueAt(path: string): unknown {
  let node: unknown = values;
  for (const key of path.split(".")) node = (node as Record<string, unknown>)[key];
  return node;
}

const isSection = (v: unknown) =>
  v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0;

const keys = keysOf(valuesText);
const documentedPaths = keys.filter((k) => k.documented).map((k) => k.path);
const coveredBy = (path: string, paths: string[]) =>
  paths.some((p) => path === p || path.startsWith(`${p}.`));

/** Rows of chart/README.md's values table: value path and its default, parsed from JSON. */
function readmeRows(): Map<string, string> {
  const start = chartReadme.indexOf("\n## Values\n");
  if (start === -1) return new Map();
  const next = chartReadme.indexOf("\n## ", start + 1);
  const section = chartReadme.slice(start, next === -1 ? undefined : next);
  const rows = new Map<string, string>();
  for (const match of section.matchAll(/^\| `([\w.]+)`\s*\| `(.*?)`\s*\|/gm)) {
    rows.set(match[1], match[2]);
  }
  return rows;
}

Deno.test("every value in values.yaml is described where it is defined", () => {
  const undocumented = keys
    .filter((k) => !isSection(valueAt(k.path)) && !coveredBy(k.path, documentedPaths))
    .map((k) => k.path);
  assertEquals(undocumented, []);
});

Deno.test("chart/README.md's values table lists every value with its real default", () => {
  const rows = readmeRows();
  assert(rows.size > 40, `expected the values table in chart/README.md, found ${rows.size} rows`);
  for (const [path, shown] of rows) {
    assert(
      keys.some((k) => k.path === path),
      `chart/README.md lists ${path}, which values.yaml lacks`,
    );
    assertEquals(JSON.parse(shown), valueAt(path), `default of ${path} in chart/README.md`);
  }
  const missing = keys
    .filter((k) => !isSection(valueAt(k.path)) && !coveredBy(k.path, [...rows.keys()]))
    .map((k) => k.path);
  assertEquals(missing, [], "values missing from the chart/README.md table");
});

Deno.test("the project README links to the chart's values reference", () => {
  assert(
    projectReadme.includes("](chart/README.md#values)"),
    "README.md links to chart/README.md#values",
  );
});
