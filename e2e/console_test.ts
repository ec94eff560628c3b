/**
 * The serial-console session against a stand-in for `virtctl console`: a
 * shell script that behaves like a cirros console (login prompt, password,
 * a shell echoing what is typed). Checks the login dance, the console set-up
 * after it, that commands' output and exit codes come back intact, and the
 * arguments virtctl gets.
 */

import { assertEquals, assertMatch } from "../testing/assert.ts";
import { openConsole } from "./console.ts";

const FAKE_VIRTCTL = `#!/bin/sh
printf '%s\\n' "$@" > "$0.args"
printf 'Successfully connected to vm console. The escape sequence is ^]\\r\\n'
while :; do
  printf '\\r\\ncirros login: '
  read -r user || exit 0
  [ -z "$user" ] && continue
  printf 'Password: '
  read -r pass || exit 0
  [ "$user" = cirros ] && [ "$pass" = gocubsgo ] && break
  printf '\\r\\nLogin incorrect'
done
while printf '\\033[0m$ '; read -r line; do
  [ "$line" = exit ] && break
  printf '%s\\r\\n' "$line"
  PATH="$0.guest:$PATH" sh -c "$line" 2>&1 | sed 's/$/\\r/'
done
`;

/** Guest-only commands: recorded, never run on this machine. */
const GUEST_COMMANDS = ["sudo", "stty"];

Deno.test("console: logs in, runs commands, returns output and exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imds-e2e-console-" });
  try {
    const virtctl = `${dir}/virtctl`;
    await Deno.writeTextFile(virtctl, FAKE_VIRTCTL);
    await Deno.chmod(virtctl, 0o755);
    await Deno.mkdir(`${virtctl}.guest`);
    for (const name of GUEST_COMMANDS) {
      const path = `${virtctl}.guest/${name}`;
      await Deno.writeTextFile(path, `#!/bin/sh\necho "${name} $*" >> "${dir}/guest.log"\n`);
      await Deno.chmod(path, 0o755);
    }
    const guest = openConsole(virtctl, "kind-imds", "imds-e2e-1", "vm-a");
    try {
      await guest.login("cirros", "gocubsgo", 20_000, 100);
      assertEquals(await guest.run("echo hello; echo world"), {
        output: "hello\nworld\n",
        exitCode: 0,
      });
      assertEquals(await guest.run("printf '%s\\n' '{\"a\":1}'; sh -c 'exit 3'"), {
        output: '{"a":1}\n',
        exitCode: 3,
      });
      // A long line goes through in pieces and arrives whole.
      const long = "x".repeat(300);
      assertEquals((await guest.run(`echo ${long}`)).output, `${long}\n`);
    } finally {
      await guest.close();
    }
    const args = (await Deno.readTextFile(`${virtctl}.args`)).trim().split("\n");
    assertEquals(args, [
      "--context",
      "kind-imds",
      "console",
      "vm-a",
      "--namespace",
      "imds-e2e-1",
      "--timeout",
      "5",
    ]);
    assertMatch(guest.transcript(), /cirros login: Password: /);
    // After the login, as KubeVirt's console tests do: kernel messages off, a wide terminal.
    assertEquals((await Deno.readTextFile(`${dir}/guest.log`)).trim().split("\n"), [
      "sudo dmesg -n 1",
      "stty cols 500 rows 500",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
