/**
 * What lets a VM's owner into the guest, read from the VM's annotations and
 * spec: Secrets of SSH public keys (imds.kubevirt.io/ssh-keys-secret and the
 * VM's own spec.accessCredentials), the admin password Secret and the admin
 * account name. Odd values are ignored with a warning, never a refusal.
 */

import { ADMIN_PASSWORD_DEFAULT_KEY, ANNOTATIONS } from "../shared/contract.ts";
import { isObject, type JsonValue } from "./json_patch.ts";
import { parseObjectReference, quote, type Reading } from "./opt_in.ts";

export interface GuestAccess {
  /** Secret names, each mounted whole; every key holds SSH public keys. */
  sshKeySecrets: string[];
  adminPassword?: { name: string; key: string };
  adminUsername?: string;
}

/** At most this many SSH key Secrets are mounted. */
export const MAX_SSH_KEY_SECRETS = 16;

const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
// Windows and Linux account names alike (the sidecar checks the same).
const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,19}$/;

/** Comma-separated Secret names; malformed ones are dropped with a warning. */
function secretList(annotation: string, value: unknown, warnings: string[]): string[] {
  if (value === undefined || value === "") return [];
  if (typeof value !== "string") {
    warnings.push(`${annotation} is ${quote(value)}; expected Secret names separated by commas`);
    return [];
  }
  const names: string[] = [];
  for (const part of value.split(",")) {
    const name = part.trim();
    if (name === "") continue;
    if (SECRET_NAME.test(name)) names.push(name);
    else {
      warnings.push(`${annotation}: ${quote(name)} is not a Secret name, so it was ignored`);
    }
  }
  return names;
}

export function readGuestAccess(annotations: Record<string, unknown>): Reading<GuestAccess> {
  const warnings: string[] = [];
  const secrets = [
    ...secretList(ANNOTATIONS.sshKeysSecret, annotations[ANNOTATIONS.sshKeysSecret], warnings),
    ...secretList(
      ANNOTATIONS.accessCredentialsSecrets,
      annotations[ANNOTATIONS.accessCredentialsSecrets],
      warnings,
    ),
  ];
  const unique = [...new Set(secrets)];
  if (unique.length > MAX_SSH_KEY_SECRETS) {
    warnings.push(
      `${unique.length} SSH key Secrets are named; only the first ${MAX_SSH_KEY_SECRETS} are used`,
    );
  }
  const access: GuestAccess = { sshKeySecrets: unique.slice(0, MAX_SSH_KEY_SECRETS) };

  const password = annotations[ANNOTATIONS.adminPasswordSecret];
  if (password !== undefined && password !== "") {
    const reference = typeof password === "string"
      ? parseObjectReference(password.trim(), ADMIN_PASSWORD_DEFAULT_KEY)
      : undefined;
    if (reference) access.adminPassword = reference;
    else {
      warnings.push(
        `${ANNOTATIONS.adminPasswordSecret} is ${
          quote(password)
        }; expected NAME or NAME/KEY (a Secret in the VM's namespace), so it was ignored`,
      );
    }
  }
  const user = annotations[ANNOTATIONS.adminUsername];
  if (user !== undefined && user !== "") {
    if (typeof user === "string" && ACCOUNT_NAME.test(user)) access.adminUsername = user;
    else {
      warnings.push(
        `${ANNOTATIONS.adminUsername} is ${
          quote(user)
        }; expected an account name of 1-20 letters, digits, _ . -, so it was ignored`,
      );
    }
  }
  return { value: access, warnings };
}

/**
 * The Secrets of `spec.accessCredentials[].sshPublicKey.source.secret` of a
 * VMI spec (a VM's `spec.template.spec`), in order, without repeats.
 */
export function accessCredentialSecrets(spec: JsonValue | undefined): string[] {
  const credentials = isObject(spec) ? spec.accessCredentials : undefined;
  if (!Array.isArray(credentials)) return [];
  const names: string[] = [];
  for (const credential of credentials) {
    const source = isObject(credential) && isObject(credential.sshPublicKey)
      ? credential.sshPublicKey.source
      : undefined;
    const secret = isObject(source) && isObject(source.secret)
      ? source.secret.secretName
      : undefined;
    if (typeof secret === "string" && SECRET_NAME.test(secret) && !names.includes(secret)) {
      names.push(secret);
    }
  }
  return names;
}
