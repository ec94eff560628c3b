/**
 * A stand-in HTTP server inside a namespace that answers every request with one fixed body:
 * the node's own metadata service, or "whoever answered" in interception tests.
 *
 *   ip netns exec <ns> deno run -A testing/netns/http_responder.ts '<ResponderOptions JSON>'
 *
 * prints `{"listening":true}` once it accepts connections, then serves until killed.
 */

import { type Lab } from "./lab.ts";
import { printResult, scriptInput } from "./harness.ts";

export interface ResponderOptions {
  /** The address to listen on ("0.0.0.0" for all). */
  hostname: string;
  /** Default 80. */
  port?: number;
  /** What every request gets. */
  body: string;
}

export interface Responder {
  /** SIGTERM; resolves once the process has exited. */
  stop(): Promise<void>;
}

const SCRIPT = new URL(import.meta.url).pathname;

/**
 * Starts the responder in namespace `ns` and returns once it listens. With `lab`, the lab's
 * clean-up stops it too.
 */
export async function startHttpResponder(
  ns: string,
  options: ResponderOptions,
  lab?: Lab,
): Promise<Responder> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "-A",
      "--no-lock",
      SCRIPT,
      JSON.stringify(options),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let stopped: Promise<void> | undefined;
  const responder: Responder = {
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await child.status;
        await child.stdout.cancel().catch(() => {});
      })();
      return stopped;
    },
  };
  lab?.defer(() => responder.stop());
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the responder "${options.body}" in ${ns} exited before listening`);
    seen += decoder.decode(value);
  }
  reader.releaseLock();
  const ready = JSON.parse(seen.split("\n")[0]) as { listening: boolean };
  if (!ready.listening) throw new Error(`the responder in ${ns} did not listen: ${seen}`);
  return responder;
}

function main(options: ResponderOptions): void {
  Deno.serve({
    hostname: options.hostname,
    port: options.port ?? 80,
    onListen() {
      printResult({ listening: true });
    },
  }, () => new Response(options.body));
}

if (import.meta.main) main(scriptInput<ResponderOptions>());
