import { assertEquals, assertThrows } from "../../testing/assert.ts";
import {
  copiesOf,
  entrypointOf,
  inBuildContext,
  labelsOf,
  parseDockerfile,
  parseDockerignore,
  parseInstructions,
  shellWords,
  userOf,
} from "./dockerfile.ts";

const text = `# syntax=docker/dockerfile:1
ARG BASE_VERSION=1.2.3
FROM example/base:\${BASE_VERSION} AS build
COPY a.txt dir/ ./
RUN one \\
    # a comment inside a continuation
    two
FROM scratch
ARG VERSION=9.9
LABEL a.b="x y" \\
      c.d=\${VERSION}
COPY --from=build --chown=1:1 /out/ /
USER 5:5
ENTRYPOINT ["/bin/app", "x"]
`;

Deno.test("dockerfile: continuations, comments, ARG defaults and stages", () => {
  const parsed = parseDockerfile(text);
  assertEquals(parsed.globalArgs, { BASE_VERSION: "1.2.3" });
  assertEquals(parsed.stages.map((s) => [s.image, s.name]), [
    ["example/base:1.2.3", "build"],
    ["scratch", undefined],
  ]);
  const runs = parsed.stages[0].instructions.filter((i) => i.keyword === "RUN");
  assertEquals(runs, [{ keyword: "RUN", args: "one two", line: 5 }]);
  const [build, final] = parsed.stages;
  assertEquals(copiesOf(build), [
    { from: undefined, sources: ["a.txt", "dir/"], destination: "./", line: 4 },
  ]);
  assertEquals(copiesOf(final)[0].from, "build");
  assertEquals(labelsOf(final), { "a.b": "x y", "c.d": "9.9" });
  assertEquals(userOf(final), "5:5");
  assertEquals(entrypointOf(final), ["/bin/app", "x"]);
});

Deno.test("dockerfile: malformed files are refused with the line", () => {
  assertThrows(() => parseDockerfile("RUN x\nFROM a"), /line 1: RUN before FROM/);
  assertThrows(() => parseInstructions("FROM a\nRUN b \\"), /line 2: continuation never ends/);
  assertThrows(
    () => entrypointOf(parseDockerfile("FROM a\nENTRYPOINT /bin/app").stages[0]),
    /line 2: ENTRYPOINT must use the exec \(JSON\) form/,
  );
});

Deno.test("dockerignore: the last matching rule wins, parents carry their rule", () => {
  const rules = parseDockerignore(
    "# comment\n*\n!services/shared/\n!services/sidecar\n**/*_test.ts\n",
  );
  const admitted = (path: string) => inBuildContext(rules, path);
  assertEquals(admitted("services/shared/log.ts"), true);
  assertEquals(admitted("services/sidecar/kernel/libc.ts"), true);
  assertEquals(admitted("services/sidecar/kernel/libc_test.ts"), false);
  assertEquals(admitted("testing/netns/sidecar_process.ts"), false);
  assertEquals(admitted("services/webhook/main.ts"), false);
  assertEquals(admitted("README.md"), false);
  assertEquals(inBuildContext([], "anything"), true);
  const single = parseDockerignore("deno.loc?\n");
  assertEquals([inBuildContext(single, "deno.lock"), inBuildContext(single, "deno.json")], [
    false,
    true,
  ]);
});

Deno.test("shell words: quotes group, whitespace splits", () => {
  assertEquals(shellWords(`deno compile -A --v8-flags="--a --b" 'x y' z`), [
    "deno",
    "compile",
    "-A",
    "--v8-flags=--a --b",
    "x y",
    "z",
  ]);
  assertEquals(shellWords(`a "" 'b"c' "d\\"e"`), ["a", "", 'b"c', 'd"e']);
  assertThrows(() => shellWords("a 'b"), /unterminated ' in: a 'b/);
});
