/**
 * Reading the imds.kubevirt.io/* annotations a user writes on a VM's template:
 * whether the VM opted in, and where its user-data and network-config come
 * from. Odd values never fail a request: they are ignored with a warning
 * that says what was expected.
 */

import { ANNOTATIONS } from "../shared/contract.ts";

/** Where one cloud-init document comes from. */
export type CloudInitSource =
  | { kind: "annotation"; annotation: string }
  | { kind: "secret"; name: string; key: string }
  | { kind: "configMap"; name: string; key: string };

export interface CloudInitSources {
  userData?: CloudInitSource;
  networkConfig?: CloudInitSource;
}

export interface Reading<T> {
  value: T;
  warnings: string[];
}

/**
 * Default keys inside a Secret or ConfigMap: the ones KubeVirt's own
 * `cloudInitNoCloud.secretRef` uses, so an existing cloud-init Secret works as is.
 */
export const DEFAULT_KEYS = { userData: "userdata", networkConfig: "networkdata" } as const;

type Annotations = Record<string, unknown>;

/** Shortens a user-supplied value for a warning (printable, at most 40 characters). */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  const short = text.length > 40 ? text.slice(0, 37) + "..." : text;
  return JSON.stringify(short);
}

/** `true` only for the exact value "true"; anything but "false" or absent warns. */
export function readOptIn(annotations: Annotations): Reading<boolean> {
  const value = annotations[ANNOTATIONS.enabled];
  if (value === "true") return { value: true, warnings: [] };
  if (value === undefined || value === "false") return { value: false, warnings: [] };
  return {
    value: false,
    warnings: [
      `${ANNOTATIONS.enabled} is ${
        quote(value)
      }; only "true" enables the metadata service, so nothing was added`,
    ],
  };
}

// DNS-1123 subdomain (Secret and ConfigMap names) and a data key.
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/** Parses `name` or `name/key`. */
export function parseObjectReference(
  text: string,
  defaultKey: string,
): { name: string; key: string } | undefined {
  const slash = text.indexOf("/");
  const name = slash === -1 ? text : text.slice(0, slash);
  const key = slash === -1 ? defaultKey : text.slice(slash + 1);
  if (!OBJECT_NAME.test(name) || !DATA_KEY.test(key) || key === "." || key === "..") {
    return undefined;
  }
  return { name, key };
}

interface SourceAnnotations {
  document: string;
  secret: string;
  configMap: string;
  inline: string;
  defaultKey: string;
}

function readSource(
  annotations: Annotations,
  spec: SourceAnnotations,
  warnings: string[],
): CloudInitSource | undefined {
  const candidates: { annotation: string; source: CloudInitSource }[] = [];
  for (
    const [annotation, kind] of [[spec.secret, "secret"], [spec.configMap, "configMap"]] as const
  ) {
    const value = annotations[annotation];
    if (value === undefined || value === "") continue;
    const reference = typeof value === "string"
      ? parseObjectReference(value.trim(), spec.defaultKey)
      : undefined;
    if (!reference) {
      warnings.push(
        `${annotation} is ${quote(value)}; expected NAME or NAME/KEY (a ${
          kind === "secret" ? "Secret" : "ConfigMap"
        } in the VM's namespace), so it was ignored`,
      );
      continue;
    }
    candidates.push({ annotation, source: { kind, ...reference } });
  }
  const inline = annotations[spec.inline];
  if (typeof inline === "string" && inline !== "") {
    candidates.push({
      annotation: spec.inline,
      source: { kind: "annotation", annotation: spec.inline },
    });
  }
  if (candidates.length === 0) return undefined;
  const [chosen, ...ignored] = candidates;
  for (const other of ignored) {
    warnings.push(
      `${other.annotation} is ignored because ${chosen.annotation} is also set; the ${spec.document} comes from one source`,
    );
  }
  return chosen.source;
}

/**
 * The cloud-init sources named by the annotations. Precedence when several
 * are set: Secret, then ConfigMap, then the inline annotation.
 */
export function readCloudInitSources(annotations: Annotations): Reading<CloudInitSources> {
  const warnings: string[] = [];
  const value: CloudInitSources = {};
  const userData = readSource(annotations, {
    document: "user-data",
    secret: ANNOTATIONS.userDataSecret,
    configMap: ANNOTATIONS.userDataConfigMap,
    inline: ANNOTATIONS.userData,
    defaultKey: DEFAULT_KEYS.userData,
  }, warnings);
  if (userData) value.userData = userData;
  const networkConfig = readSource(annotations, {
    document: "network-config",
    secret: ANNOTATIONS.networkConfigSecret,
    configMap: ANNOTATIONS.networkConfigConfigMap,
    inline: ANNOTATIONS.networkConfig,
    defaultKey: DEFAULT_KEYS.networkConfig,
  }, warnings);
  if (networkConfig) value.networkConfig = networkConfig;
  return { value, warnings };
}
