import jsonpatch from "fast-json-patch";
import { assertEquals } from "../../testing/assert.ts";
import { podSchemaProblems } from "../../testing/pod_schema.ts";
import type { InjectionSettings } from "./config.ts";
import { webhookConfigFrom } from "../../testing/webhook_config.ts";
import type { JsonObject } from "./json_patch.ts";
import { mutatePod } from "./pod_mutation.ts";

function settings(): InjectionSettings {
  return webhookConfigFrom({}, "ghcr.io/kubevirt-imds/sidecar:0.1.0");
}

interface Container {
  name: string;
  env: { name: string; value?: string }[];
  volumeMounts: { name: string; mountPath: string; readOnly: boolean }[];
}

function injected(annotations: Record<string, string>) {
  const pod = JSON.parse(
    Deno.readTextFileSync(new URL("./fixtures/pod_masquerade.json", import.meta.url)),
  );
  Object.assign(pod.metadata.annotations, annotations);
  const mutation = mutatePod(pod, settings());
  const patched = jsonpatch.applyPatch(structuredClone(pod), mutation.operations, true, false)
    .newDocument as JsonObject;
  assertEquals(podSchemaProblems(patched), []);
  const spec = patched.spec as unknown as {
    initContainers: Container[];
    volumes: ({ name: string } & JsonObject)[];
  };
  const sidecar = spec.initContainers.find((container) => container.name === "imds-server")!;
  const env = Object.fromEntries(sidecar.env.map((entry) => [entry.name, entry.value]));
  const mounts = sidecar.volumeMounts.filter((mount) => mount.name.match(/ssh|admin|state/));
  const volumes = spec.volumes.filter((volume) => volume.name.match(/ssh|admin|state/));
  return { mutation, env, mounts, volumes };
}

Deno.test("SSH key Secrets (annotation and accessCredentials) are mounted for the sidecar, one directory each", () => {
  const { mutation, env, mounts, volumes } = injected({
    "imds.kubevirt.io/ssh-keys-secret": "team-keys",
    "imds.kubevirt.io/access-credentials-secrets": "alice-keys,team-keys",
  });
  assertEquals(mutation.warnings, []);
  assertEquals(env.IMDS_SSH_KEYS_DIR, "/var/run/imds-ssh-keys");
  assertEquals(env.IMDS_STATE_DIR, "/var/run/imds-state");
  assertEquals(mounts, [
    { name: "imds-ssh-keys", mountPath: "/var/run/imds-ssh-keys/team-keys", readOnly: true },
    { name: "imds-ssh-keys-2", mountPath: "/var/run/imds-ssh-keys/alice-keys", readOnly: true },
    { name: "imds-state", mountPath: "/var/run/imds-state", readOnly: false },
  ]);
  assertEquals(volumes, [
    // Optional: a missing Secret must not keep the VM from starting (the sidecar logs it).
    { name: "imds-ssh-keys", secret: { secretName: "team-keys", optional: true } },
    { name: "imds-ssh-keys-2", secret: { secretName: "alice-keys", optional: true } },
    { name: "imds-state", emptyDir: { sizeLimit: "1Mi" } },
  ]);
});

Deno.test("the admin password Secret and account name reach the sidecar; bad values warn", () => {
  const { env, mounts, volumes } = injected({
    "imds.kubevirt.io/admin-password-secret": "win-admin/pass",
    "imds.kubevirt.io/admin-username": "Administrator",
  });
  assertEquals(env.IMDS_ADMIN_PASSWORD_FILE, "/var/run/imds-admin/admin-password");
  assertEquals(env.IMDS_ADMIN_USERNAME, "Administrator");
  assertEquals(env.IMDS_SSH_KEYS_DIR, undefined);
  assertEquals(mounts[0], {
    name: "imds-admin-password",
    mountPath: "/var/run/imds-admin",
    readOnly: true,
  });
  assertEquals(volumes[0], {
    name: "imds-admin-password",
    secret: {
      secretName: "win-admin",
      items: [{ key: "pass", path: "admin-password" }],
      optional: true,
    },
  });
  const bad = injected({
    "imds.kubevirt.io/ssh-keys-secret": "Bad_Name, good",
    "imds.kubevirt.io/admin-password-secret": "/x",
    "imds.kubevirt.io/admin-username": "not a name",
  });
  assertEquals(bad.mutation.warnings, [
    'imds.kubevirt.io/ssh-keys-secret: "Bad_Name" is not a Secret name, so it was ignored',
    'imds.kubevirt.io/admin-password-secret is "/x"; expected NAME or NAME/KEY (a Secret in the VM\'s namespace), so it was ignored',
    'imds.kubevirt.io/admin-username is "not a name"; expected an account name of 1-20 letters, digits, _ . -, so it was ignored',
  ]);
  assertEquals(bad.env.IMDS_SSH_KEYS_DIR, "/var/run/imds-ssh-keys");
  assertEquals(bad.env.IMDS_ADMIN_PASSWORD_FILE, undefined);
  assertEquals(bad.env.IMDS_ADMIN_USERNAME, undefined);
});
