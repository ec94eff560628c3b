/**
 * The one reader of the runtime flags in deno.json: a task of the form
 * `deno run FLAGS... SCRIPT` split into its flags and script, so the lab, the
 * demo, the benchmarks and the image tests all run a service exactly as its
 * task (and its container image) does.
 */

const ROOT = new URL("../", import.meta.url);

/** A `deno run` task: the flags between `run` and the script, and the script. */
export interface DenoRunTask {
  flags: string[];
  script: string;
}

/** Every task of deno.json, as written. */
export function denoTasks(): Record<string, string> {
  return JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))).tasks ?? {};
}

/** Splits a `deno run FLAGS SCRIPT ...` command; throws when it is not one. */
export function parseDenoRun(command: string): DenoRunTask {
  if (/["'\\]/.test(command)) throw new Error(`task "${command}" uses shell quoting`);
  const words = command.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`task "${command}" is not a deno run`);
  }
  const scriptAt = words.findIndex((word, i) => i >= 2 && !word.startsWith("-"));
  if (scriptAt < 0) throw new Error(`task "${command}" names no script`);
  return { flags: words.slice(2, scriptAt), script: words[scriptAt] };
}

/** The deno.json task `name`, split; throws when it is missing or does not run `script`. */
export function denoRunTask(name: string, script?: string): DenoRunTask {
  const command = denoTasks()[name];
  if (command === undefined) throw new Error(`deno.json has no task "${name}"`);
  const task = parseDenoRun(command);
  if (script !== undefined && task.script !== script) {
    throw new Error(`task "${name}" runs ${task.script}, not ${script}`);
  }
  return task;
}
