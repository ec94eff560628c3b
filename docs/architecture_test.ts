/**
 * docs/architecture.md stays true to the tree: every file or folder it names exists.
 */
import { assert, assertEquals } from "../testing/assert.ts";

const ROOT = new URL("../", import.meta.url);
const doc = await Deno.readTextFile(new URL("docs/architecture.md", ROOT));

/** What a repository path starts with; other code spans are names, addresses or commands. */
const TOP_LEVEL =
  /^(services|testing|bench|e2e|tools|deploy|chart|docs|\.ci)\/|^(Dockerfile\.\w+|Taskfile\.yml|deno\.json|import_map\.json|README\.md)$/;

/** The repository paths the doc names in code spans. */
function namedPaths(markdown: string): string[] {
  const spans = [...markdown.matchAll(/`([^`\s]+)`/g)].map((match) => match[1]);
  return [...new Set(spans.filter((span) => TOP_LEVEL.test(span)))].sort();
}

function exists(path: string): boolean {
  try {
    const info = Deno.statSync(new URL(path, ROOT));
    return path.endsWith("/") ? info.isDirectory : info.isFile;
  } catch {
    return false;
  }
}

Deno.test("architecture doc: every path it names exists", () => {
  const paths = namedPaths(doc);
  assert(paths.length > 60, `expected the doc to name the tree's files, found ${paths.length}`);
  assertEquals(paths.filter((path) => !exists(path)), []);
});

Deno.test("architecture doc: names every folder of the sidecar's layers and each binding mode", () => {
  for (
    const folder of [
      "services/sidecar/kernel/",
      "services/sidecar/datapath/",
      "services/sidecar/http/",
      "services/webhook/",
      "testing/netns/",
    ]
  ) {
    assert(namedPaths(doc).includes(folder), `${folder} is described`);
  }
  for (const mode of ["Masquerade", "Bridge binding", "Multus", "passt"]) {
    assert(doc.includes(`### ${mode}`), `the ${mode} data path is described`);
  }
});

Deno.test("architecture doc: a path that does not exist is caught", () => {
  const paths = namedPaths("`services/sidecar/nowhere.ts` and `k6t-<hash>` and `/v1/identity`");
  assertEquals(paths, ["services/sidecar/nowhere.ts"]);
  assertEquals(paths.filter((path) => !exists(path)), ["services/sidecar/nowhere.ts"]);
});
