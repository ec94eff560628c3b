/**
 * kubevirt-imds sidecar entry point.
 *
 *   main.ts serve   serve the metadata API on IMDS_LISTEN_ADDR; no network changes
 *   main.ts run     attach to the VM's network, then serve on 169.254.169.254:80
 *   main.ts password   print the encrypted password the guest posted (base64)
 *
 * Configuration is read from IMDS_* environment variables (see README).
 */

import { serve } from "./serve.ts";

const USAGE =
  "usage: main.ts serve | run | password   (configuration: IMDS_* environment variables)";

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "serve":
      return await serve(rest);
    case "run": {
      // Loaded only for `run`, so `serve` starts without the network code.
      const { run } = await import("./run.ts");
      return await run(rest);
    }
    case "password": {
      const { printPassword } = await import("./password_command.ts");
      return printPassword(rest);
    }
    default:
      console.error(command === undefined ? USAGE : `unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

Deno.exit(await main(Deno.args));
