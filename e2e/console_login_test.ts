import { assert, assertEquals } from "../testing/assert.ts";
import { LOGIN_START, type LoginProgress, loginStep } from "./console_login.ts";

/** A serial console transcript as recorded: CRLF line ends, no newline after the last prompt. */
function recorded(name: string): string {
  const text = Deno.readTextFileSync(new URL(`./fixtures/console_${name}.txt`, import.meta.url));
  return text.replace(/\n$/, "").replaceAll("\n", "\r\n");
}

const CIRROS = { user: "cirros", password: "gocubsgo" };
const UBUNTU = { user: "ubuntu", password: "imds-test" };

/** How a shell answers a framed command: its echo, then the markers printf writes. */
function shellAnswer(typed: string, prompt: string): string {
  const id = /begin-(\S+);/.exec(typed)?.[1];
  assert(id, `not a framed command: ${typed}`);
  return `${typed.trimEnd()}\r\n<<begin-${id}>>\r\n<<end-${id}:0>>\r\n${prompt}`;
}

/**
 * Drives the state machine against a guest: each poll, the guest prints what
 * `guest` returns for the text typed in the previous poll (undefined: nothing
 * typed). Returns what was typed, in order, and the final progress.
 */
function drive(
  start: string,
  credentials: { user: string; password: string },
  guest: (typed: string | undefined, transcript: string) => string,
  maxPolls = 30,
): { typed: string[]; progress: LoginProgress; transcript: string } {
  let transcript = start;
  let progress = LOGIN_START;
  const typed: string[] = [];
  let ids = 0;
  for (let poll = 0; poll < maxPolls && progress.phase !== "shell"; poll++) {
    const step = loginStep(progress, transcript, credentials, () => `p${++ids}`);
    progress = step.progress;
    if (step.type !== undefined) typed.push(step.type);
    if (progress.phase !== "shell") transcript += guest(step.type, transcript);
  }
  return { typed, progress, transcript };
}

/** A getty then a shell: echoes input, asks for the password, logs in with the right one. */
function gettyThenShell(
  credentials: { user: string; password: string },
  host: string,
  prompt: string,
  options: { rejectFirstPassword?: boolean } = {},
) {
  let state: "login" | "password" | "shell" = "login";
  let reject = options.rejectFirstPassword ?? false;
  let user = "";
  return (typed: string | undefined): string => {
    if (typed === undefined) return "";
    if (state === "shell") {
      return typed === "\n" ? `\r\n${prompt}` : shellAnswer(typed, prompt);
    }
    if (state === "login") {
      user = typed.trimEnd();
      if (user === "") return `\r\n${host} login: `;
      state = "password";
      return `${user}\r\nPassword: `;
    }
    if (user === credentials.user && typed.trimEnd() === credentials.password && !reject) {
      state = "shell";
      return `\r\n${prompt}`;
    }
    state = "login";
    reject = false;
    return `\r\nLogin incorrect\r\n${host} login: `;
  };
}

Deno.test("login: cirros debug banners before the login prompt are not taken for a shell", () => {
  const boot = recorded("cirros_no_dhcp");
  assert(boot.trimEnd().endsWith("##############"), "the recorded boot ends in a banner");
  const first = loginStep(LOGIN_START, boot, CIRROS, () => "p1");
  // A nudge to see whether the line comes back, never a probe or the password.
  assertEquals([first.type, first.progress.phase], ["\n", "nudged"]);
  // The guest goes on booting instead of echoing the line: more banner, then the login prompt.
  const guest = gettyThenShell(CIRROS, "imds-cirros-no-dhcp", "$ ");
  let loginShown = false;
  const run = drive(boot, CIRROS, (typed, transcript) => {
    if (!loginShown) {
      loginShown = true;
      return `\r\n${recorded("cirros_login")}`;
    }
    return transcript.endsWith("login: ") && typed === "\n" ? "" : guest(typed);
  });
  assertEquals(run.progress.phase, "shell");
  assertEquals(run.typed.slice(-3).map((t) => t.startsWith("printf") ? "probe" : t), [
    "cirros\n",
    "gocubsgo\n",
    "probe",
  ]);
});

Deno.test("login: Ubuntu's ec2 fingerprint banner after the login prompt is not taken for a shell", () => {
  const transcript = recorded("ubuntu_login") + recorded("ubuntu_ec2_banner");
  const guest = gettyThenShell(
    UBUNTU,
    "imds-ubuntu-cloud-init",
    "ubuntu@imds-ubuntu-cloud-init:~$ ",
  );
  const run = drive(transcript, UBUNTU, (typed) => guest(typed));
  assertEquals(run.progress.phase, "shell");
  // Newline at the banner: the getty prints its prompt again, and the login goes on from there.
  assertEquals(run.typed[0], "\n");
  assertEquals(run.typed.slice(1, 3), ["ubuntu\n", "imds-test\n"]);
  assert(run.typed[3].startsWith("printf '<<%s>>\\n' begin-"), "then one probe");
  assertEquals(run.typed.length, 4);
});

Deno.test("login: a banner printed after the password is typed waits for the probe's markers", () => {
  // The password is accepted but the banner lands before the shell prompt: the
  // machine probes, and declares the shell only once the markers come back.
  let step = loginStep(
    { phase: "password", mark: 0, polls: 0 },
    recorded("ubuntu_login") + "ubuntu\r\nPassword: \r\n" + recorded("ubuntu_ec2_banner"),
    UBUNTU,
    () => "p1",
  );
  assertEquals(step.progress.phase, "probe");
  const typed = step.type!;
  let transcript = "…ec2: ####\r\n";
  step = loginStep(step.progress, transcript, UBUNTU, () => "p2");
  assertEquals(step.progress.phase, "probe", "no markers yet");
  transcript += shellAnswer(typed, "ubuntu@imds-ubuntu-cloud-init:~$ ");
  step = loginStep(step.progress, transcript, UBUNTU, () => "p3");
  assertEquals(step.progress.phase, "shell");
});

Deno.test("login: a console left at a shell is confirmed by a probe, without typing credentials", () => {
  const guest = (typed: string | undefined) =>
    typed === undefined ? "" : typed === "\n" ? "\r\n$ " : shellAnswer(typed, "$ ");
  const run = drive("\r\n$ ", CIRROS, guest);
  assertEquals(run.progress.phase, "shell");
  assertEquals(run.typed.map((t) => t.startsWith("printf") ? "probe" : t), ["\n", "probe"]);
});

Deno.test("login: a wrong password brings the login prompt back and the login starts again", () => {
  const host = "imds-cirros-masquerade";
  const guest = gettyThenShell(CIRROS, host, "$ ", { rejectFirstPassword: true });
  const run = drive(`${host} login: `, CIRROS, (typed) => guest(typed));
  assertEquals(run.progress.phase, "shell");
  assertEquals(run.typed.filter((t) => t === "cirros\n").length, 2);
});

Deno.test("login: a console that stays silent gets a newline now and then, never a probe", () => {
  const run = drive("[   12.3] random: crng init done\r\n", CIRROS, () => "", 12);
  assert(run.progress.phase !== "shell");
  assert(run.typed.length >= 3, `typed ${JSON.stringify(run.typed)}`);
  assert(run.typed.every((t) => t === "\n"), `typed ${JSON.stringify(run.typed)}`);
});
