/**
 * The `password` subcommand: prints the encrypted password the guest posted
 * (base64, as cloudbase-init sent it), for its owner to decrypt with the
 * private SSH key:
 *
 *   kubectl exec -n NS POD -c imds-server -- imds-sidecar password
 *
 * Exits 1 with a message on stderr when no password has been posted yet.
 */

import { createLogger } from "../shared/log.ts";
import { type Env, processEnv } from "../shared/settings.ts";
import { createPasswordStore } from "./api/password_store.ts";
import { startSubcommand } from "./subcommand.ts";

export function printPassword(args: string[], env: Env = processEnv): number {
  const started = startSubcommand("password", args, env);
  if (typeof started === "number") return started;
  const { stateDir } = started.config.guestAccess;
  // Warnings about an unreadable file go to stderr, so stdout holds only the password.
  const log = createLogger({ component: "sidecar", sink: (line) => console.error(line) });
  const password = createPasswordStore(stateDir, log).get();
  if (password === "") {
    console.error(
      stateDir === undefined
        ? "no password: the sidecar keeps none on disk (IMDS_STATE_DIR is not set)"
        : "no password has been posted by the guest yet",
    );
    return 1;
  }
  console.log(password);
  return 0;
}
