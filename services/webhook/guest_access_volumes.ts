/**
 * The sidecar's share of guest access, as core/v1 JSON: one Secret volume per
 * SSH key Secret (mounted under SIDECAR_PATHS.sshKeysDir/<Secret name>, so a
 * rotated key reaches the sidecar when the kubelet updates the volume), the
 * admin password Secret's key as one file, and an emptyDir for the password
 * a guest posts.
 *
 * Why an emptyDir for that password: it lives as long as the pod, so a
 * restarted sidecar container still serves it; the sidecar has no API access
 * to write a Secret, and a hostPath would outlive the VM on the node. It is
 * lost when the pod goes (VM stopped or migrated), which is also when a new
 * guest boot may post again. Secrets are mounted `optional: true`: a missing
 * one must not keep the VM from starting; the sidecar logs it instead.
 */

import { SIDECAR_ENV, SIDECAR_PATHS } from "../shared/contract.ts";
import type { GuestAccess } from "./guest_access.ts";
import type { JsonObject } from "./json_patch.ts";
import { freeName } from "./sidecar_spec.ts";

/** Base names of the volumes; a numeric suffix is added when a name is taken. */
export const GUEST_ACCESS_VOLUMES = {
  sshKeys: "imds-ssh-keys",
  adminPassword: "imds-admin-password",
  state: "imds-state",
} as const;

/** The state emptyDir holds one small file; the kubelet evicts a pod whose emptyDir passes its limit. */
export const STATE_SIZE_LIMIT = "1Mi";

export interface SidecarAdditions {
  env: JsonObject[];
  volumeMounts: JsonObject[];
  volumes: JsonObject[];
}

/** Volumes, mounts and env for `access`; `taken` (volume names in the pod) is updated. */
export function guestAccessAdditions(access: GuestAccess, taken: Set<string>): SidecarAdditions {
  const additions: SidecarAdditions = { env: [], volumeMounts: [], volumes: [] };
  const volume = (base: string, source: JsonObject, mountPath: string, readOnly: boolean) => {
    const name = freeName(base, taken);
    taken.add(name);
    additions.volumes.push({ name, ...source });
    additions.volumeMounts.push({ name, mountPath, readOnly });
  };
  for (const secret of access.sshKeySecrets) {
    volume(
      GUEST_ACCESS_VOLUMES.sshKeys,
      { secret: { secretName: secret, optional: true } },
      `${SIDECAR_PATHS.sshKeysDir}/${secret}`,
      true,
    );
  }
  if (access.sshKeySecrets.length > 0) {
    additions.env.push({ name: SIDECAR_ENV.sshKeysDir, value: SIDECAR_PATHS.sshKeysDir });
  }
  if (access.adminPassword) {
    const file = SIDECAR_PATHS.adminPassword.slice(SIDECAR_PATHS.adminPasswordDir.length + 1);
    volume(
      GUEST_ACCESS_VOLUMES.adminPassword,
      {
        secret: {
          secretName: access.adminPassword.name,
          items: [{ key: access.adminPassword.key, path: file }],
          optional: true,
        },
      },
      SIDECAR_PATHS.adminPasswordDir,
      true,
    );
    additions.env.push({ name: SIDECAR_ENV.adminPasswordFile, value: SIDECAR_PATHS.adminPassword });
  }
  if (access.adminUsername !== undefined) {
    additions.env.push({ name: SIDECAR_ENV.adminUsername, value: access.adminUsername });
  }
  volume(
    GUEST_ACCESS_VOLUMES.state,
    { emptyDir: { sizeLimit: STATE_SIZE_LIMIT } },
    SIDECAR_PATHS.stateDir,
    false,
  );
  additions.env.push({ name: SIDECAR_ENV.stateDir, value: SIDECAR_PATHS.stateDir });
  return additions;
}
