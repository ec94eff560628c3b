import { assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";

const main = new URL("./main.ts", import.meta.url).pathname;

async function runMain(args: string[], env: Record<string, string>) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("serve with a bad configuration prints one message naming the variable and exits 2", async () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ IMDS_VM_NAME: "vm" }, "IMDS_NAMESPACE", /IMDS_NAMESPACE: is required but not set/],
    [
      { IMDS_NAMESPACE: "a", IMDS_VM_NAME: "vm", IMDS_RATE_LIMIT: "lots" },
      "IMDS_RATE_LIMIT",
      /IMDS_RATE_LIMIT: expected a number, got "lots"/,
    ],
    [
      { IMDS_NAMESPACE: "a", IMDS_VM_NAME: "vm", IMDS_AUDIENCE_TOKENS: "[]" },
      "IMDS_AUDIENCE_TOKENS",
      /IMDS_AUDIENCE_TOKENS: expected a JSON object/,
    ],
  ];
  for (const [env, setting, pattern] of cases) {
    const result = await runMain(["serve"], env);
    assertEquals(result.code, 2, setting);
    const lines = result.stderr.trim().split("\n");
    assertEquals(lines.length, 1, result.stderr);
    const line = JSON.parse(lines[0]);
    assertEquals([line.level, line.setting], ["error", setting]);
    assertMatch(line.msg, pattern);
    assertEquals(result.stdout, "");
  }
});

Deno.test("an unknown or missing subcommand prints usage and exits 2", async () => {
  for (const args of [[], ["serve-all"]]) {
    const result = await runMain(args, {});
    assertEquals(result.code, 2);
    assertStringIncludes(result.stderr, "usage: main.ts serve | run");
  }
});

Deno.test("serve answers on IMDS_LISTEN_ADDR and stops cleanly on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "serve"],
    env: { IMDS_NAMESPACE: "a", IMDS_VM_NAME: "vm", IMDS_LISTEN_ADDR: "127.0.0.1:0" },
    clearEnv: true,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let address: string | undefined;
  while (address === undefined) {
    const { value, done } = await lines.read();
    if (done) throw new Error("serve exited before listening");
    buffered += value;
    address = /"address":"([^"]+)"/.exec(buffered)?.[1];
  }
  const response = await fetch(`http://${address}/v1/meta-data`);
  assertEquals(await response.text(), "instance-id: a-vm\nlocal-hostname: vm\n");
  child.kill("SIGTERM");
  const drain = (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  assertEquals((await child.status).code, 0);
  await drain;
});
