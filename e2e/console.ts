/**
 * A guest's serial console, through `virtctl console` bound to the run's
 * context: log in, run a command, read its output and exit code. Cirros has
 * no guest agent, the Ubuntu containerdisk ships none either, and Fedora's is
 * kept off the network by SELinux: the console works with every guest.
 */

import { LOGIN_START, loginStep } from "./console_login.ts";
import { framedCommand, framedOutput } from "./transcript.ts";
import { done, pollUntil, waiting } from "./poll.ts";

export interface GuestConsole {
  /**
   * Logs in, answering the prompts it sees every `intervalMs` (default 3 s)
   * (console_login.ts), then silences kernel messages and widens the terminal.
   */
  login(user: string, password: string, timeoutMs: number, intervalMs?: number): Promise<void>;
  /** Runs a shell command in the guest; returns its output and exit code. */
  run(command: string, timeoutMs?: number): Promise<{ output: string; exitCode: number }>;
  transcript(): string;
  close(): Promise<void>;
}

const CHUNK = 48; // bytes typed at once: a guest's serial line can drop a burst

export function openConsole(
  virtctl: string,
  context: string,
  namespace: string,
  vm: string,
): GuestConsole {
  const child = new Deno.Command(virtctl, {
    args: ["--context", context, "console", vm, "--namespace", namespace, "--timeout", "5"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let ended = false;
  const reader = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          text += chunk;
        },
      }),
    ).catch(() => {});
  const readers = [reader(child.stdout), reader(child.stderr)];
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  let commands = 0;
  const nextId = () => `${++commands}x${Math.random().toString(36).slice(2, 6)}`;

  async function type(line: string): Promise<void> {
    if (ended) throw new Error(`virtctl console for ${vm} ended:\n${text.slice(-2000)}`);
    const bytes = encoder.encode(line);
    for (let i = 0; i < bytes.length; i += CHUNK) {
      await writer.write(bytes.slice(i, i + CHUNK));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
  }

  async function run(command: string, timeoutMs = 60_000) {
    const id = nextId();
    await type(`${framedCommand(command, id)}\n`);
    return await pollUntil(`"${command}" on the console of ${vm}`, () => {
      const result = framedOutput(text, id);
      return Promise.resolve(result ? done(result) : waiting(text.slice(-200)));
    }, { timeoutMs, intervalMs: 500 });
  }

  return {
    transcript: () => text,
    async login(user, password, timeoutMs, intervalMs = 3000) {
      let progress = LOGIN_START;
      await pollUntil(`a shell on the serial console of ${vm}`, async () => {
        const step = loginStep(progress, text, { user, password }, nextId);
        progress = step.progress;
        if (progress.phase === "shell") return done(undefined);
        if (step.type !== undefined) await type(step.type);
        return waiting(`console shows ${step.seen} (${progress.phase})`);
      }, { timeoutMs, intervalMs });
      // As KubeVirt's own console tests do: kernel messages off the console, a wide terminal.
      for (const command of ["sudo dmesg -n 1", "stty cols 500 rows 500"]) {
        const { output, exitCode } = await run(command, 30_000);
        if (exitCode !== 0) throw new Error(`"${command}" exited ${exitCode}: ${output}`);
      }
    },
    run,
    async close() {
      try {
        await type("exit\n"); // log out, so the next session starts at the login prompt
        await new Promise((resolve) => setTimeout(resolve, 500));
        // virtctl's escape (Ctrl+]) counts only as the first byte of a read: send it alone.
        await type("\x1d");
        await writer.close();
      } catch {
        // The console may already be gone.
      }
      const timer = setTimeout(() => {
        if (!ended) child.kill("SIGTERM");
      }, 5000);
      await status;
      clearTimeout(timer);
      await Promise.all(readers);
    },
  };
}
