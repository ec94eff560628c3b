/**
 * Logging in on a guest's serial console, as a state machine over the
 * transcript: what to type next, and when the console is a shell.
 *
 * A line ending in `$` or `#` is not proof of a shell: cirros prints
 * `############ debug start ##############` banners before its login prompt
 * when it has no gateway, and Ubuntu's cloud-init prints `ec2: ####…` banners
 * after the first login prompt. The shell is accepted only when a framed
 * command typed at it comes back with its markers, and that probe is typed
 * only after the password was sent, or after a newline made the same prompt
 * line (and nothing else) appear again, as a shell does and a banner does not.
 */

import { cleanTranscript, framedCommand, framedOutput } from "./transcript.ts";

export type LoginPhase =
  /** Nothing typed yet, or the last input went nowhere known. */
  | "start"
  /** The user name was typed at a login prompt. */
  | "user"
  /** The password was typed at the password prompt that followed. */
  | "password"
  /** A newline was typed at a line that looks like a prompt, to see whether it comes back. */
  | "nudged"
  /** A framed command was typed; its markers prove the shell. */
  | "probe"
  | "shell";

export interface LoginProgress {
  phase: LoginPhase;
  /** Transcript length when the last input was typed: what follows is the guest's answer. */
  mark: number;
  /** Polls since the last input. */
  polls: number;
  /** The prompt-like line a newline was typed at (phase "nudged"). */
  prompt?: string;
  /** The id of the framed probe (phase "probe"). */
  probe?: string;
}

export const LOGIN_START: LoginProgress = { phase: "start", mark: 0, polls: 0 };

export interface LoginStep {
  progress: LoginProgress;
  /** What to type now, if anything. */
  type?: string;
  /** A short description of the console for progress messages. */
  seen: string;
}

const LOGIN_PROMPT = /\blogin:\s*$/;
const PASSWORD_PROMPT = /[Pp]assword:\s*$/;
const PROMPT_LIKE = /[$#]\s*$/;
/** Polls without an answer before a newline is typed to wake the console. */
const PATIENCE = 2;

function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/**
 * The next step of a login, from the whole transcript so far. `probeId`
 * gives a fresh id for each framed probe.
 */
export function loginStep(
  progress: LoginProgress,
  transcript: string,
  credentials: { user: string; password: string },
  probeId: () => string,
): LoginStep {
  const text = cleanTranscript(transcript);
  const last = nonEmptyLines(text).at(-1) ?? "";
  const seen = JSON.stringify(last.slice(-120));
  const send = (phase: LoginPhase, type: string, extra: Partial<LoginProgress> = {}) => ({
    // A probe sent earlier still proves the shell if its markers turn up late.
    progress: { phase, mark: transcript.length, polls: 0, probe: progress.probe, ...extra },
    type,
    seen,
  });
  const wait = (): LoginStep => ({ progress: { ...progress, polls: progress.polls + 1 }, seen });

  if (progress.phase === "shell") return { progress, seen };
  if (progress.probe && framedOutput(transcript, progress.probe)) {
    return { progress: { phase: "shell", mark: transcript.length, polls: 0 }, seen };
  }
  const fresh = nonEmptyLines(cleanTranscript(transcript.slice(progress.mark)));
  if (LOGIN_PROMPT.test(last)) {
    // A prompt we answered shows the user name after it once echoed; until then, wait.
    if (progress.phase === "user" && fresh.length === 0 && progress.polls < PATIENCE) return wait();
    return send("user", `${credentials.user}\n`);
  }
  if (PASSWORD_PROMPT.test(last)) {
    if (progress.phase === "user") return send("password", `${credentials.password}\n`);
    if (progress.phase === "password" && fresh.length === 0) return wait();
    // Not our prompt to answer: an empty password fails and brings the login prompt back.
    return progress.polls < PATIENCE ? wait() : send("start", "\n");
  }
  if (PROMPT_LIKE.test(last)) {
    const repeated = progress.phase === "nudged" && fresh.length === 1 &&
      fresh[0].trim() === progress.prompt?.trim();
    if (progress.phase === "password" || repeated) {
      const id = probeId();
      return send("probe", `${framedCommand("true", id)}\n`, { probe: id });
    }
    if (progress.phase === "probe" && progress.polls < PATIENCE) return wait();
    if (progress.phase === "nudged" && fresh.length === 0 && progress.polls < PATIENCE) {
      return wait();
    }
    return send("nudged", "\n", { prompt: last });
  }
  return progress.polls < PATIENCE ? wait() : send(
    progress.phase === "user" || progress.phase === "password" ? progress.phase : "start",
    "\n",
  );
}
