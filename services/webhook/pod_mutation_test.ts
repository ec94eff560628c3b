import jsonpatch from "fast-json-patch";
import { assert, assertEquals } from "../../testing/assert.ts";
import type { InjectionSettings } from "./config.ts";
import { webhookConfigFrom } from "../../testing/webhook_config.ts";
import type { JsonObject, PatchOperation } from "./json_patch.ts";
import { mutatePod } from "./pod_mutation.ts";
import { podSchemaProblems } from "../../testing/pod_schema.ts";

const IMAGE = "ghcr.io/kubevirt-imds/sidecar:0.1.0";

function settings(file: JsonObject = {}): InjectionSettings {
  return webhookConfigFrom(file, IMAGE);
}

function fixture(name: string): JsonObject {
  return JSON.parse(Deno.readTextFileSync(new URL(`./fixtures/${name}.json`, import.meta.url)));
}

/** Applies the patch to a copy (as the API server would) and checks the result's schema. */
function applyAndValidate(pod: JsonObject, operations: PatchOperation[]): JsonObject {
  const patched = jsonpatch.applyPatch(structuredClone(pod), operations, true, false)
    .newDocument as JsonObject;
  assertEquals(podSchemaProblems(patched), []);
  return patched;
}

const fieldEnv = (name: string, fieldPath: string) => ({
  name,
  valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
});

const SECURITY_CONTEXT = {
  runAsUser: 0,
  runAsNonRoot: false,
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { add: ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"], drop: ["ALL"] },
};

const DEFAULT_RESOURCES = { requests: { cpu: "10m", memory: "48Mi" }, limits: { memory: "128Mi" } };

const IDENTITY_ENV = [
  fieldEnv("IMDS_NAMESPACE", "metadata.namespace"),
  fieldEnv("IMDS_POD_NAME", "metadata.name"),
  fieldEnv("IMDS_NODE_NAME", "spec.nodeName"),
  fieldEnv("IMDS_SA_NAME", "spec.serviceAccountName"),
];

const DEFAULT_TUNING_ENV = [
  { name: "IMDS_RATE_LIMIT", value: "10" },
  { name: "IMDS_RATE_LIMIT_BURST", value: "20" },
  { name: "IMDS_LOG_LEVEL", value: "info" },
  { name: "IMDS_HOP_LIMIT", value: "1" },
  { name: "IMDS_SESSIONS_REQUIRED", value: "false" },
  { name: "IMDS_ARP_RESPONDER", value: "true" },
  { name: "IMDS_BRIDGE_INTERCEPT", value: "true" },
  { name: "IMDS_PASST", value: "true" },
  { name: "IMDS_GUEST_ROUTE_IDLE_SECONDS", value: "300" },
];

/** Every sidecar gets an emptyDir for the password a guest posts (see guest_access_volumes.ts). */
const STATE_ENV = { name: "IMDS_STATE_DIR", value: "/var/run/imds-state" };
const STATE_MOUNT = { name: "imds-state", mountPath: "/var/run/imds-state", readOnly: false };
const STATE_VOLUME = {
  op: "add",
  path: "/spec/volumes/-",
  value: { name: "imds-state", emptyDir: { sizeLimit: "1Mi" } },
};

/** Every sidecar reads its pod's labels and annotations from downward API files (pod_info.ts). */
const POD_INFO_ENV = [
  { name: "IMDS_POD_LABELS_FILE", value: "/var/run/imds-pod/labels" },
  { name: "IMDS_POD_ANNOTATIONS_FILE", value: "/var/run/imds-pod/annotations" },
];
const POD_INFO_MOUNT = { name: "imds-pod-info", mountPath: "/var/run/imds-pod", readOnly: true };
const POD_INFO_VOLUME = {
  op: "add",
  path: "/spec/volumes/-",
  value: {
    name: "imds-pod-info",
    downwardAPI: {
      items: [
        { path: "labels", fieldRef: { apiVersion: "v1", fieldPath: "metadata.labels" } },
        { path: "annotations", fieldRef: { apiVersion: "v1", fieldPath: "metadata.annotations" } },
      ],
    },
  },
};

Deno.test("masquerade pod with inline user-data gets a native sidecar, token and downward-API user-data", () => {
  const pod = fixture("pod_masquerade");
  const mutation = mutatePod(pod, settings());
  assertEquals(mutation.warnings, []);
  assertEquals(mutation.operations, [
    {
      op: "add",
      path: "/spec/initContainers/-",
      value: {
        name: "imds-server",
        image: IMAGE,
        imagePullPolicy: "IfNotPresent",
        args: ["run"],
        env: [
          ...IDENTITY_ENV,
          { name: "IMDS_VM_NAME", value: "fedora-imds" },
          { name: "IMDS_VMI_UID", value: "7b0c8f9e-3f4a-4d2b-9c1e-5a6b7c8d9e0f" },
          { name: "IMDS_TOKEN_PATH", value: "/var/run/secrets/tokens/token" },
          { name: "IMDS_USER_DATA_FILE", value: "/var/run/imds/user-data" },
          ...DEFAULT_TUNING_ENV,
          STATE_ENV,
          ...POD_INFO_ENV,
        ],
        resources: DEFAULT_RESOURCES,
        securityContext: SECURITY_CONTEXT,
        volumeMounts: [
          { name: "imds-token", mountPath: "/var/run/secrets/tokens", readOnly: true },
          { name: "imds-cloud-init", mountPath: "/var/run/imds", readOnly: true },
          STATE_MOUNT,
          POD_INFO_MOUNT,
        ],
        terminationMessagePolicy: "FallbackToLogsOnError",
        restartPolicy: "Always",
      },
    },
    {
      op: "add",
      path: "/spec/volumes/-",
      value: {
        name: "imds-token",
        projected: {
          sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }],
        },
      },
    },
    {
      op: "add",
      path: "/spec/volumes/-",
      value: {
        name: "imds-cloud-init",
        projected: {
          sources: [{
            downwardAPI: {
              items: [{
                path: "user-data",
                fieldRef: {
                  apiVersion: "v1",
                  fieldPath: "metadata.annotations['imds.kubevirt.io/user-data']",
                },
              }],
            },
          }],
        },
      },
    },
    STATE_VOLUME,
    POD_INFO_VOLUME,
  ]);
  const patched = applyAndValidate(pod, mutation.operations);
  const spec = patched.spec as { initContainers: { name: string }[]; containers: unknown[] };
  // Appended after KubeVirt's own init containers; the main containers are untouched.
  assertEquals(spec.initContainers.map((container) => container.name), [
    "container-disk-binary",
    "volumecontainerdisk-init",
    "imds-server",
  ]);
  assertEquals(spec.containers, (pod.spec as JsonObject).containers);
});

Deno.test("bridge pod without init containers, plain-container mode and custom settings", () => {
  const pod = fixture("pod_bridge");
  const mutation = mutatePod(
    pod,
    settings({
      sidecar: {
        image: "ignored-because-the-environment-wins",
        imagePullPolicy: "Always",
        nativeSidecar: false,
        resources: { requests: { cpu: "5m", memory: "32Mi" }, limits: { cpu: 1, memory: "64Mi" } },
        logLevel: "debug",
        allowedAnnotations: ["example.com/owner", "team.example.com/*"],
        rateLimit: { requestsPerSecond: 2.5, burst: 5 },
        hopLimit: 3,
        sessionsRequired: true,
        network: {
          bridgeNames: ["k6t-eth0", "k6t-net1"],
          arpResponder: false,
          bridgeIntercept: true,
          passt: false,
          guestRouteIdleSeconds: 60,
        },
      },
      token: { expirationSeconds: 7200, audiences: ["vault", "https://sts.example.com"] },
      vendorData: "#cloud-config\npackages: [htop]\n",
    }),
  );
  assertEquals(mutation.warnings, []);
  assertEquals(mutation.operations, [
    {
      op: "add",
      path: "/spec/containers/-",
      value: {
        name: "imds-server",
        image: IMAGE,
        imagePullPolicy: "Always",
        args: ["run"],
        env: [
          ...IDENTITY_ENV,
          { name: "IMDS_VM_NAME", value: "rhel-bridge" },
          { name: "IMDS_VMI_UID", value: "0f1e2d3c-4b5a-4968-8776-655443322110" },
          { name: "IMDS_TOKEN_PATH", value: "/var/run/secrets/tokens/token" },
          {
            name: "IMDS_AUDIENCE_TOKENS",
            value: JSON.stringify({
              "vault": "/var/run/secrets/tokens/audience-0",
              "https://sts.example.com": "/var/run/secrets/tokens/audience-1",
            }),
          },
          { name: "IMDS_VENDOR_DATA", value: "#cloud-config\npackages: [htop]\n" },
          { name: "IMDS_ALLOWED_ANNOTATIONS", value: "example.com/owner,team.example.com/*" },
          { name: "IMDS_RATE_LIMIT", value: "2.5" },
          { name: "IMDS_RATE_LIMIT_BURST", value: "5" },
          { name: "IMDS_LOG_LEVEL", value: "debug" },
          { name: "IMDS_HOP_LIMIT", value: "3" },
          { name: "IMDS_SESSIONS_REQUIRED", value: "true" },
          { name: "IMDS_BRIDGE_NAME", value: "k6t-eth0,k6t-net1" },
          { name: "IMDS_ARP_RESPONDER", value: "false" },
          { name: "IMDS_BRIDGE_INTERCEPT", value: "true" },
          { name: "IMDS_PASST", value: "false" },
          { name: "IMDS_GUEST_ROUTE_IDLE_SECONDS", value: "60" },
          STATE_ENV,
          ...POD_INFO_ENV,
        ],
        resources: {
          requests: { cpu: "5m", memory: "32Mi" },
          limits: { cpu: "1", memory: "64Mi" },
        },
        securityContext: SECURITY_CONTEXT,
        volumeMounts: [
          { name: "imds-token", mountPath: "/var/run/secrets/tokens", readOnly: true },
          STATE_MOUNT,
          POD_INFO_MOUNT,
        ],
        terminationMessagePolicy: "FallbackToLogsOnError",
      },
    },
    {
      op: "add",
      path: "/spec/volumes/-",
      value: {
        name: "imds-token",
        projected: {
          sources: [
            { serviceAccountToken: { path: "token", expirationSeconds: 7200 } },
            {
              serviceAccountToken: {
                audience: "vault",
                path: "audience-0",
                expirationSeconds: 7200,
              },
            },
            {
              serviceAccountToken: {
                audience: "https://sts.example.com",
                path: "audience-1",
                expirationSeconds: 7200,
              },
            },
          ],
        },
      },
    },
    STATE_VOLUME,
    POD_INFO_VOLUME,
  ]);
  const patched = applyAndValidate(pod, mutation.operations);
  assertEquals(
    (patched.spec as { containers: { name: string }[] }).containers.map((c) => c.name),
    ["compute", "imds-server"],
  );
  assertEquals((patched.spec as JsonObject).initContainers, undefined);
});

Deno.test("Multus pod: user-data from a Secret, network-config from a ConfigMap key, a clashing volume name", () => {
  const pod = fixture("pod_multus_sources");
  const mutation = mutatePod(pod, settings());
  assertEquals(mutation.warnings, []);
  const [container, token, cloudInit] = mutation.operations;
  assertEquals(container, {
    op: "add",
    path: "/spec/initContainers/-",
    value: {
      name: "imds-server",
      image: IMAGE,
      imagePullPolicy: "IfNotPresent",
      args: ["run"],
      env: [
        ...IDENTITY_ENV,
        { name: "IMDS_VM_NAME", value: "ubuntu-multus" },
        { name: "IMDS_VMI_UID", value: "a1b2c3d4-e5f6-4789-9abc-def012345678" },
        { name: "IMDS_TOKEN_PATH", value: "/var/run/secrets/tokens/token" },
        { name: "IMDS_USER_DATA_FILE", value: "/var/run/imds/user-data" },
        { name: "IMDS_NETWORK_CONFIG_FILE", value: "/var/run/imds/network-config" },
        ...DEFAULT_TUNING_ENV,
        STATE_ENV,
        ...POD_INFO_ENV,
      ],
      resources: DEFAULT_RESOURCES,
      securityContext: SECURITY_CONTEXT,
      volumeMounts: [
        { name: "imds-token-2", mountPath: "/var/run/secrets/tokens", readOnly: true },
        { name: "imds-cloud-init", mountPath: "/var/run/imds", readOnly: true },
        STATE_MOUNT,
        POD_INFO_MOUNT,
      ],
      terminationMessagePolicy: "FallbackToLogsOnError",
      restartPolicy: "Always",
    },
  });
  // The user's own volume called imds-token is left alone; ours is imds-token-2.
  assertEquals(token, {
    op: "add",
    path: "/spec/volumes/-",
    value: {
      name: "imds-token-2",
      projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] },
    },
  });
  assertEquals(cloudInit, {
    op: "add",
    path: "/spec/volumes/-",
    value: {
      name: "imds-cloud-init",
      projected: {
        sources: [
          {
            secret: {
              name: "ubuntu-cloud-init",
              items: [{ key: "userdata", path: "user-data" }],
              optional: false,
            },
          },
          {
            configMap: {
              name: "tenant-networks",
              items: [{ key: "ubuntu.yaml", path: "network-config" }],
              optional: false,
            },
          },
        ],
      },
    },
  });
  assertEquals(mutation.operations.length, 5);
  const patched = applyAndValidate(pod, mutation.operations);
  const names = (patched.spec as { volumes: { name: string }[] }).volumes.map((volume) =>
    volume.name
  );
  assertEquals(new Set(names).size, names.length, "volume names stay unique");
});

Deno.test("an injected pod is left alone when reviewed again (native and plain container)", () => {
  for (const nativeSidecar of [true, false]) {
    const config = settings({ sidecar: { nativeSidecar } });
    const pod = fixture("pod_masquerade");
    const first = mutatePod(pod, config);
    const injected = jsonpatch.applyPatch(structuredClone(pod), first.operations).newDocument;
    const second = mutatePod(injected as JsonObject, config);
    assertEquals(second.operations, []);
    assertEquals(second.reason, "sidecar already present");
  }
});

Deno.test("pods that are not opted in, or not virt-launcher pods, are not changed", () => {
  assertEquals(mutatePod(fixture("pod_not_opted_in"), settings()), {
    operations: [],
    warnings: [],
    reason: "not opted in",
  });
  const pod = fixture("pod_masquerade");
  (pod.metadata as { labels: Record<string, string> }).labels["kubevirt.io"] = "virt-handler";
  assertEquals(mutatePod(pod, settings()).operations, []);
  const disabled = fixture("pod_masquerade");
  (disabled.metadata as { annotations: Record<string, string> }).annotations[
    "imds.kubevirt.io/enabled"
  ] = "false";
  assertEquals(mutatePod(disabled, settings()).warnings, []);
  assertEquals(mutatePod(disabled, settings()).operations, []);
});

Deno.test("odd annotations: no crash, a sensible result and a warning", () => {
  const withAnnotations = (annotations: Record<string, string>) => {
    const pod = fixture("pod_masquerade");
    Object.assign(
      (pod.metadata as { annotations: Record<string, string> }).annotations,
      annotations,
    );
    return pod;
  };
  const yes = mutatePod(withAnnotations({ "imds.kubevirt.io/enabled": "yes" }), settings());
  assertEquals(yes.operations, []);
  assertEquals(yes.warnings, [
    'imds.kubevirt.io/enabled is "yes"; only "true" enables the metadata service, so nothing was added',
  ]);

  // An invalid Secret name is ignored; the inline annotation still serves user-data.
  const badSecret = mutatePod(
    withAnnotations({ "imds.kubevirt.io/user-data-secret": "Not_A_Name/key" }),
    settings(),
  );
  assertEquals(badSecret.warnings, [
    'imds.kubevirt.io/user-data-secret is "Not_A_Name/key"; expected NAME or NAME/KEY (a Secret in the VM\'s namespace), so it was ignored',
  ]);
  const cloudInit = badSecret.operations[2].value as JsonObject;
  assertEquals(
    JSON.stringify(cloudInit).includes("metadata.annotations['imds.kubevirt.io/user-data']"),
    true,
  );

  // Two sources for user-data: the Secret wins, the annotation is reported as ignored.
  const both = mutatePod(
    withAnnotations({ "imds.kubevirt.io/user-data-secret": "vm-secrets/user-data" }),
    settings(),
  );
  assertEquals(both.warnings, [
    "imds.kubevirt.io/user-data is ignored because imds.kubevirt.io/user-data-secret is also set; the user-data comes from one source",
  ]);
  assertEquals((both.operations[2].value as { projected: JsonObject }).projected, {
    sources: [{
      secret: {
        name: "vm-secrets",
        items: [{ key: "user-data", path: "user-data" }],
        optional: false,
      },
    }],
  });

  // No kubevirt.io/domain annotation: injected, identity falls back to the pod name.
  const noDomain = fixture("pod_masquerade");
  delete (noDomain.metadata as { annotations: Record<string, string> }).annotations[
    "kubevirt.io/domain"
  ];
  const result = mutatePod(noDomain, settings());
  assertEquals(result.warnings, [
    "the pod has no kubevirt.io/domain annotation; the metadata service reports the pod name as the VM name",
  ]);
  assert(
    !JSON.stringify(result.operations[0].value).includes("IMDS_VM_NAME"),
    "no IMDS_VM_NAME without the annotation",
  );
  applyAndValidate(noDomain, result.operations);
});

Deno.test("odd pod shapes: absent arrays are created, non-list fields are refused with a warning", () => {
  const minimal: JsonObject = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "virt-launcher-bare-abcde",
      labels: { "kubevirt.io": "virt-launcher" },
      annotations: { "imds.kubevirt.io/enabled": "true", "kubevirt.io/domain": "bare" },
    },
    spec: { containers: [{ name: "compute", image: "virt-launcher" }] },
  };
  const mutation = mutatePod(minimal, settings());
  assertEquals(mutation.operations.map((operation) => operation.path), [
    "/spec/initContainers",
    "/spec/volumes",
  ]);
  assert(Array.isArray(mutation.operations[0].value));
  applyAndValidate(minimal, mutation.operations);

  const broken = structuredClone(minimal);
  (broken.spec as JsonObject).volumes = { oops: true };
  assertEquals(mutatePod(broken, settings()).warnings, [
    "the pod's spec.volumes is not a list; the metadata sidecar was not added",
  ]);
  const noSpec = structuredClone(minimal);
  delete noSpec.spec;
  assertEquals(mutatePod(noSpec, settings()).operations, []);
  assertEquals(mutatePod({ kind: "Pod" }, settings()).warnings, [
    "the pod has no metadata; nothing was added",
  ]);
});

Deno.test("the schema check used above rejects unknown and mistyped fields", () => {
  const pod = fixture("pod_masquerade");
  const spec = pod.spec as { containers: JsonObject[] };
  spec.containers[0].restartPolicy = "Always";
  spec.containers[0].capabilities = { add: ["NET_ADMIN"] }; // belongs under securityContext
  assertEquals(podSchemaProblems(pod), ["unknown field .spec.containers[0].capabilities"]);
  spec.containers[0].imagePullPolicy = 42 as unknown as string;
  assert(podSchemaProblems(pod).length === 2);
});
