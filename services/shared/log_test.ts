import { assertEquals } from "../../testing/assert.ts";
import {
  createLogger,
  isoTime,
  lineWriter,
  type Logger,
  type LogLevel,
  type PlainValue,
} from "./log.ts";

function capture(level: LogLevel) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    component: "test",
    level,
    sink: (line) => lines.push(JSON.parse(line)),
  });
  return { lines, log };
}

Deno.test("log lines are JSON with level, component, message and fields", () => {
  const { lines, log } = capture("info");
  log.info("found bridge k6t-eth0", { bridge: "k6t-eth0" });
  assertEquals(lines.length, 1);
  assertEquals(lines[0].level, "info");
  assertEquals(lines[0].component, "test");
  assertEquals(lines[0].msg, "found bridge k6t-eth0");
  assertEquals(lines[0].bridge, "k6t-eth0");
  assertEquals(typeof lines[0].time, "string");
});

Deno.test("lines below the configured level are dropped", () => {
  const { lines, log } = capture("warn");
  log.debug("noise");
  log.info("noise");
  log.warn("kept");
  log.error("kept too");
  assertEquals(lines.map((l) => l.msg), ["kept", "kept too"]);
});

Deno.test("with() adds fields to every line and errors become their message", () => {
  const { lines, log } = capture("debug");
  log.with({ request: 7 }).error("failed", { error: new Error("boom") });
  assertEquals(lines[0].request, 7);
  assertEquals(lines[0].error, "boom");
});

Deno.test("isoTime formats like Date.prototype.toISOString", () => {
  const samples = [0, 951_782_400_000, 1_709_164_799_999, 4_102_444_800_000, 1_763_850_000_123];
  for (let ms = 0; ms < 4e12; ms += 9_876_543_210.987) samples.push(Math.floor(ms));
  for (const ms of samples) assertEquals(isoTime(ms), new Date(ms).toISOString());
});

Deno.test("a line keeps its field order, and a field named like a line's own replaces it", () => {
  const { lines, log } = capture("info");
  log.info('quoted "path"', { path: '/a"b\\c', status: 200, gone: undefined });
  log.info("override", { component: "other", level: "custom" });
  assertEquals(Object.keys(lines[0]), ["time", "level", "component", "msg", "path", "status"]);
  assertEquals(lines[0].path, '/a"b\\c');
  assertEquals(lines[0].msg, 'quoted "path"');
  assertEquals([lines[1].component, lines[1].level], ["other", "custom"]);
});

Deno.test("a line writer writes the same text as the logger's own method", () => {
  const texts: string[] = [];
  // The time is the only part that may differ between two lines.
  const sink = (line: string) => texts.push(line.replace(/^\{"time":"[^"]*"/, '{"time":""'));
  const odd: PlainValue[] = [
    "/v1/identity",
    '/a"b\\c',
    "/\x00\x01\n\t\x1f\x7f",
    "/\ud800 lone \udc00",
    "/pair \ud83d\ude00 é \u2028",
    "",
    0,
    -0,
    0.1 + 0.2,
    1e21,
    -5e-7,
    NaN,
    Infinity,
    true,
    false,
    null,
    undefined,
  ];
  const loggers: [string, Logger][] = [
    ["plain", createLogger({ component: "api", sink })],
    ["with fields", createLogger({ component: "api", sink }).with({ vm: 'a"b', n: 3 })],
    ["object base", createLogger({ component: "api", sink, fields: { nested: { a: 1 } } })],
  ];
  const nameLists = [
    ["method", "path", "status", "durationMs", "client"],
    ["value"],
    ["component", "extra"],
    ["msg"],
    [],
  ];
  for (const [label, log] of loggers) {
    for (const names of nameLists) {
      const write = lineWriter(log, "info", "request", names);
      for (let first = 0; first < odd.length; first++) {
        const fields: Record<string, PlainValue> = {};
        names.forEach((name, i) => fields[name] = odd[(first + i) % odd.length]);
        texts.length = 0;
        log.info("request", fields);
        write(fields);
        assertEquals(texts.length, 2, `${label} ${names}`);
        assertEquals(texts[1], texts[0], `${label} ${names} ${JSON.stringify(fields)}`);
      }
    }
  }
});

Deno.test("a line writer below the logger's level writes nothing", () => {
  const { lines, log } = capture("warn");
  lineWriter(log, "info", "request", ["path"])({ path: "/v1/identity" });
  lineWriter(log, "warn", "slow", ["path"])({ path: "/v1/identity" });
  assertEquals(lines.map((l) => [l.msg, l.path]), [["slow", "/v1/identity"]]);
});

Deno.test("a line writer over another Logger calls it with the fields", () => {
  const calls: unknown[] = [];
  const log: Logger = {
    debug() {},
    info: (msg, fields) => calls.push([msg, fields]),
    warn() {},
    error() {},
    with: () => log,
  };
  lineWriter(log, "info", "request", ["path", "status"])({ path: "/healthz", status: 200 });
  assertEquals(calls, [["request", { path: "/healthz", status: 200 }]]);
});

Deno.test("stdout lines reach stdout before an exit or a crash ends the process", async () => {
  const logModule = new URL("./log.ts", import.meta.url).href;
  const run = async (ending: string) => {
    const script = `import { createLogger } from "${logModule}";
      const log = createLogger({ component: "test" });
      log.info("first"); log.error("second"); log.info("third"); ${ending}`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const messages = (bytes: Uint8Array) =>
      new TextDecoder().decode(bytes).split("\n").filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line).msg);
    return { stdout: messages(output.stdout), stderr: messages(output.stderr) };
  };
  for (const ending of ["", "Deno.exit(3);", "throw new Error('crash');"]) {
    assertEquals(await run(ending), { stdout: ["first", "third"], stderr: ["second"] }, ending);
  }
});
