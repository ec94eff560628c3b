/**
 * The sidecar container and the volumes it needs, as core/v1 JSON objects
 * ready to go into a JSON Patch.
 *
 * Security: the sidecar needs NET_ADMIN (veths, addresses), NET_RAW (ARP over
 * AF_PACKET) and NET_BIND_SERVICE (port 80). Kubernetes adds capabilities to
 * the bounding set only; a process gets them in its effective set when it
 * runs as uid 0 (Kubernetes has no ambient capabilities). virt-launcher pods
 * of non-root VMs run as uid 107 with runAsNonRoot, so the container sets
 * runAsUser: 0 and runAsNonRoot: false. File capabilities on the binary are
 * no way out: allowPrivilegeEscalation: false sets no_new_privs, which stops
 * exec from granting them. Everything else is dropped, the container is not
 * privileged and its root filesystem is read-only.
 */

import { SIDECAR_CONTAINER_NAME, SIDECAR_ENV, SIDECAR_PATHS } from "../shared/contract.ts";
import type { InjectionSettings, ResourceRequirements } from "./config.ts";
import type { JsonObject } from "./json_patch.ts";
import type { CloudInitSource, CloudInitSources } from "./opt_in.ts";
import type { GuestProtection } from "./guest_protection.ts";

/** Base names of the volumes; a numeric suffix is added when a name is taken. */
export const VOLUME_BASE_NAMES = { token: "imds-token", cloudInit: "imds-cloud-init" } as const;

/** File names inside SIDECAR_PATHS.cloudInitDir. */
export const CLOUD_INIT_FILES = { userData: "user-data", networkConfig: "network-config" } as const;

export interface PodFacts {
  /** The VMI name, from the kubevirt.io/domain annotation. */
  vmName?: string;
  /** The VMI uid, from the kubevirt.io/created-by label. */
  vmiUid?: string;
  sources: CloudInitSources;
  /** The VM's hop limit and session rule (its annotations); the settings' when absent. */
  protection?: GuestProtection;
}

export interface VolumeNames {
  token: string;
  cloudInit: string;
}

export interface SidecarSpec {
  container: JsonObject;
  volumes: JsonObject[];
}

/** The token file name for the n-th extra audience. */
export function audienceFile(index: number): string {
  return `audience-${index}`;
}

function fieldEnv(name: string, fieldPath: string): JsonObject {
  return { name, valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } } };
}

/**
 * A literal env value as the kubelet must see it: the kubelet expands `$(NAME)`
 * in literal values and turns `$$` into `$`, so every `$` is written `$$`; the
 * container then gets `value` byte for byte, whatever it holds.
 */
export function escapeEnvValue(value: string): string {
  return value.replaceAll("$", "$$$$");
}

function valueEnv(name: string, value: string): JsonObject {
  return { name, value: escapeEnvValue(value) };
}

export function buildSidecar(
  settings: InjectionSettings,
  facts: PodFacts,
  names: VolumeNames,
): SidecarSpec {
  const { sidecar, token } = settings;
  const env: JsonObject[] = [
    fieldEnv(SIDECAR_ENV.namespace, "metadata.namespace"),
    fieldEnv(SIDECAR_ENV.podName, "metadata.name"),
    fieldEnv(SIDECAR_ENV.nodeName, "spec.nodeName"),
    fieldEnv(SIDECAR_ENV.saName, "spec.serviceAccountName"),
  ];
  if (facts.vmName !== undefined) env.push(valueEnv(SIDECAR_ENV.vmName, facts.vmName));
  if (facts.vmiUid !== undefined) env.push(valueEnv(SIDECAR_ENV.vmiUid, facts.vmiUid));
  env.push(valueEnv(SIDECAR_ENV.tokenPath, SIDECAR_PATHS.token));
  if (token.audiences.length > 0) {
    const files = Object.fromEntries(
      token.audiences.map((audience, index) => [
        audience,
        `${SIDECAR_PATHS.tokenDir}/${audienceFile(index)}`,
      ]),
    );
    env.push(valueEnv(SIDECAR_ENV.audienceTokens, JSON.stringify(files)));
  }
  if (facts.sources.userData) {
    env.push(
      valueEnv(
        SIDECAR_ENV.userDataFile,
        `${SIDECAR_PATHS.cloudInitDir}/${CLOUD_INIT_FILES.userData}`,
      ),
    );
  }
  if (facts.sources.networkConfig) {
    env.push(
      valueEnv(
        SIDECAR_ENV.networkConfigFile,
        `${SIDECAR_PATHS.cloudInitDir}/${CLOUD_INIT_FILES.networkConfig}`,
      ),
    );
  }
  if (settings.vendorData !== "") env.push(valueEnv(SIDECAR_ENV.vendorData, settings.vendorData));
  if (sidecar.allowedAnnotations.length > 0) {
    env.push(valueEnv(SIDECAR_ENV.allowedAnnotations, sidecar.allowedAnnotations.join(",")));
  }
  env.push(
    valueEnv(SIDECAR_ENV.rateLimit, String(sidecar.rateLimit.requestsPerSecond)),
    valueEnv(SIDECAR_ENV.rateLimitBurst, String(sidecar.rateLimit.burst)),
    valueEnv(SIDECAR_ENV.logLevel, sidecar.logLevel),
    valueEnv(SIDECAR_ENV.hopLimit, String(facts.protection?.hopLimit ?? sidecar.hopLimit)),
    valueEnv(
      SIDECAR_ENV.sessionsRequired,
      String(facts.protection?.sessionsRequired ?? sidecar.sessionsRequired),
    ),
  );
  if (sidecar.network.bridgeNames.length > 0) {
    env.push(valueEnv(SIDECAR_ENV.bridgeName, sidecar.network.bridgeNames.join(",")));
  }
  env.push(
    valueEnv(SIDECAR_ENV.arpResponder, String(sidecar.network.arpResponder)),
    valueEnv(SIDECAR_ENV.bridgeIntercept, String(sidecar.network.bridgeIntercept)),
    valueEnv(SIDECAR_ENV.passt, String(sidecar.network.passt)),
    valueEnv(SIDECAR_ENV.guestRouteIdleSeconds, String(sidecar.network.guestRouteIdleSeconds)),
  );

  const volumeMounts: JsonObject[] = [
    { name: names.token, mountPath: SIDECAR_PATHS.tokenDir, readOnly: true },
  ];
  const volumes: JsonObject[] = [tokenVolume(settings, names.token)];
  const cloudInit = cloudInitVolume(facts.sources, names.cloudInit);
  if (cloudInit) {
    volumes.push(cloudInit);
    volumeMounts.push({
      name: names.cloudInit,
      mountPath: SIDECAR_PATHS.cloudInitDir,
      readOnly: true,
    });
  }

  const container: JsonObject = {
    name: SIDECAR_CONTAINER_NAME,
    image: sidecar.image,
    imagePullPolicy: sidecar.imagePullPolicy,
    args: ["run"],
    env,
    resources: copyResources(sidecar.resources),
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {
        add: ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"],
        drop: ["ALL"],
      },
    },
    volumeMounts,
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  // A native sidecar: an init container the kubelet keeps running (and restarts).
  if (sidecar.nativeSidecar) container.restartPolicy = "Always";
  return { container, volumes };
}

/** A fresh copy, so a patch never shares objects with the configuration. */
function copyResources(resources: ResourceRequirements): JsonObject {
  const copy: JsonObject = {};
  if (resources.requests) copy.requests = { ...resources.requests };
  if (resources.limits) copy.limits = { ...resources.limits };
  return copy;
}

function tokenVolume(settings: InjectionSettings, name: string): JsonObject {
  const { expirationSeconds, audiences } = settings.token;
  return {
    name,
    projected: {
      sources: [
        { serviceAccountToken: { path: "token", expirationSeconds } },
        ...audiences.map((audience, index) => ({
          serviceAccountToken: { audience, path: audienceFile(index), expirationSeconds },
        })),
      ],
    },
  };
}

function projection(source: CloudInitSource, path: string): JsonObject {
  switch (source.kind) {
    case "annotation":
      return {
        downwardAPI: {
          items: [{
            path,
            fieldRef: {
              apiVersion: "v1",
              fieldPath: `metadata.annotations['${source.annotation}']`,
            },
          }],
        },
      };
    case "secret":
      return { secret: { name: source.name, items: [{ key: source.key, path }], optional: false } };
    case "configMap":
      return {
        configMap: { name: source.name, items: [{ key: source.key, path }], optional: false },
      };
  }
}

/** One projected volume holding user-data and network-config, whatever their sources. */
function cloudInitVolume(sources: CloudInitSources, name: string): JsonObject | undefined {
  const projections: JsonObject[] = [];
  if (sources.userData) projections.push(projection(sources.userData, CLOUD_INIT_FILES.userData));
  if (sources.networkConfig) {
    projections.push(projection(sources.networkConfig, CLOUD_INIT_FILES.networkConfig));
  }
  if (projections.length === 0) return undefined;
  return { name, projected: { sources: projections } };
}

/** `base`, or `base-2`, `base-3`… when a volume of that name exists. */
export function freeName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let suffix = 2;; suffix++) {
    const candidate = `${base}-${suffix}`;
    if (!taken.has(candidate)) return candidate;
  }
}
