/**
 * deploy/images/rootfs.sh builds the images' whole root filesystem. Run it on
 * this machine's own Deno binary (a dynamically linked glibc program, like
 * the compiled services) and run the result in a chroot with nothing else in
 * it: the runtime starts, and FFI finds libc.so.6 by name as the sidecar's
 * network code does.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";

const SCRIPT = new URL("./rootfs.sh", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const underCi = Deno.env.get("CI") === "true";

async function sh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command("sh", { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "imds-rootfs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("rootfs.sh: the binary and exactly its shared libraries, at their own paths", async () => {
  await withTempDir(async (dir) => {
    const deno = Deno.execPath();
    const result = await sh([SCRIPT, deno, `${dir}/root`]);
    assertEquals(result.code, 0, result.stderr);
    const files: string[] = [];
    for await (const path of walk(`${dir}/root`)) files.push(path.slice(dir.length + 5));
    const name = deno.split("/").at(-1)!;
    assert(files.includes(`/usr/local/bin/${name}`), `binary installed: ${files}`);
    assert(files.some((f) => /\/libc\.so\.6$/.test(f)), "libc.so.6 copied");
    assert(files.some((f) => /\/ld-linux[\w.-]*\.so\.\d$/.test(f)), "dynamic loader copied");
    // Nothing but the binary and libraries: no shell, no tools.
    for (const file of files) {
      assertMatch(file, /^\/usr\/local\/bin\/[\w.-]+$|\.so(\.\d+)*$/, `unexpected file ${file}`);
    }
    assertStringIncludes(result.stdout, `holds ${name} and ${files.length - 1} libraries`);
  });
});

Deno.test("rootfs.sh: refuses what cannot become an image, saying why", async () => {
  await withTempDir(async (dir) => {
    const missing = await sh([SCRIPT, `${dir}/no-such-binary`, `${dir}/a`]);
    assertEquals(missing.code, 1);
    assertStringIncludes(missing.stderr, "no-such-binary is not an executable file");
    const script = `${dir}/script.sh`;
    await Deno.writeTextFile(script, "#!/bin/sh\n");
    await Deno.chmod(script, 0o755);
    const notDynamic = await sh([SCRIPT, script, `${dir}/b`]);
    assertEquals(notDynamic.code, 1);
    assertMatch(notDynamic.stderr, /ldd cannot read .*script\.sh/);
    const usage = await sh([SCRIPT]);
    assertEquals([usage.code, usage.stderr.trim()], [2, "usage: rootfs.sh EXECUTABLE ROOT"]);
  });
});

Deno.test({
  name: "rootfs.sh: the packed runtime starts in an empty chroot and opens libc.so.6 over FFI",
  ignore: !isRoot && !underCi,
  fn: async () => {
    assert(isRoot, "chroot needs root; CI runs as root");
    await withTempDir(async (dir) => {
      const root = `${dir}/root`;
      assertEquals((await sh([SCRIPT, Deno.execPath(), root])).code, 0);
      const name = Deno.execPath().split("/").at(-1)!;
      const program = `const libc = Deno.dlopen("libc.so.6", ` +
        `{ getpid: { parameters: [], result: "i32" } }); ` +
        `console.log(JSON.stringify({ pid: libc.symbols.getpid(), deno: Deno.version.deno }));`;
      const output = await new Deno.Command("chroot", {
        args: [root, `/usr/local/bin/${name}`, "eval", "--no-config", program],
        env: { DENO_DIR: "/nonexistent", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, stderr);
      const answer = JSON.parse(new TextDecoder().decode(output.stdout));
      assertEquals(answer.deno, Deno.version.deno);
      assert(Number.isInteger(answer.pid) && answer.pid > 0, `getpid over FFI: ${answer.pid}`);
    });
  },
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}
