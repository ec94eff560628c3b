/**
 * The documents of the OpenStack metadata API (as Nova serves them, and as
 * cloud-init's OpenStack datasource and cloudbase-init read them): the
 * version list, each version's file list, meta_data.json and the vendor data.
 */

import type { Identity } from "../config.ts";
import { nameUuid } from "./name_uuid.ts";
import type { SshKey } from "./ssh_keys.ts";

/** Dated versions, oldest first: every one cloud-init or cloudbase-init asks for. */
export const OPENSTACK_VERSIONS = [
  "2012-08-10",
  "2013-04-04",
  "2013-10-17",
  "2015-10-15",
  "2016-06-30",
  "2016-10-06",
  "2017-02-22",
  "2018-08-27",
] as const;

export const LATEST = "latest";

/** The files of a version directory and the first version that has each (Nova's rules). */
export const OPENSTACK_FILES = {
  "meta_data.json": "2012-08-10",
  "user_data": "2012-08-10",
  "password": "2013-04-04",
  "vendor_data.json": "2013-10-17",
  "network_data.json": "2015-10-15",
  "vendor_data2.json": "2016-10-06",
} as const;

export type OpenStackFile = keyof typeof OPENSTACK_FILES;

/** Whether `version` (a dated version or "latest") has `file`. */
export function versionHas(version: string, file: OpenStackFile): boolean {
  return version === LATEST || version >= OPENSTACK_FILES[file];
}

/** One path of the API: the version list (no version), a version's file list (no file), or a file. */
export interface OpenStackPath {
  path: string;
  version?: string;
  file?: OpenStackFile;
}

/** Every path the API answers, each version with and without its trailing slash. */
export function openstackPaths(): OpenStackPath[] {
  const paths: OpenStackPath[] = [{ path: "/openstack" }, { path: "/openstack/" }];
  for (const version of [...OPENSTACK_VERSIONS, LATEST]) {
    paths.push({ path: `/openstack/${version}`, version }, {
      path: `/openstack/${version}/`,
      version,
    });
    for (const file of Object.keys(OPENSTACK_FILES) as OpenStackFile[]) {
      if (versionHas(version, file)) {
        paths.push({ path: `/openstack/${version}/${file}`, version, file });
      }
    }
  }
  return paths;
}

/** GET /openstack: one version per line, `latest` last. */
export function versionList(): string {
  return [...OPENSTACK_VERSIONS, LATEST].join("\n");
}

/** GET /openstack/<version>: the files it has, one per line. */
export function fileList(version: string, hasUserData: boolean): string {
  return (Object.keys(OPENSTACK_FILES) as OpenStackFile[])
    .filter((file) => versionHas(version, file) && (file !== "user_data" || hasUserData))
    .join("\n");
}

/**
 * The instance UUID: a name-based UUID of the VM's namespace and name, the
 * same pair NoCloud's instance-id is made of. It stays the same across
 * restarts, live migrations and re-creation of the VM under the same name,
 * and changes when the VM is renamed or moved to another namespace.
 */
export function instanceUuid(identity: Identity): string {
  return nameUuid(`kubevirt-imds://${identity.namespace}/${identity.vmName}`);
}

export interface MetaDataInput {
  identity: Identity;
  keys: readonly SshKey[];
  adminUsername?: string;
  /** The clear-text password from the user's Secret; left out when undefined or empty. */
  adminPassword?: string;
  /** The VM's labels (without KubeVirt's own). */
  labels?: Record<string, string>;
  /** The VM's custom metadata (`meta.imds.kubevirt.io/<key>` annotations). */
  meta?: Record<string, string>;
}

/**
 * Keys of Nova's `meta` that clients read as settings and that come only from their own sources:
 * cloudbase-init takes the admin account from `admin_username` (ANNOTATIONS.adminUsername) and
 * reads a password from `admin_pass` ahead of the top-level one (the admin password Secret).
 * A label or custom metadata entry with one of these keys is left out.
 */
export const RESERVED_META_KEYS: readonly string[] = ["admin_username", "admin_pass"];

/**
 * meta_data.json, as an object ready for JSON.stringify. Its `meta` (Nova's key/value
 * metadata) carries what NoCloud meta-data carries as `labels:` and `meta:`, in one map: the
 * labels, then the custom metadata, which wins when both have a key; then `admin_username`.
 */
export function metaDataJson(input: MetaDataInput): Record<string, unknown> {
  const { identity } = input;
  const meta: Record<string, string> = {};
  for (const source of [input.labels, input.meta]) {
    for (const [key, value] of Object.entries(source ?? {})) {
      if (!RESERVED_META_KEYS.includes(key)) meta[key] = value;
    }
  }
  if (input.adminUsername !== undefined) meta.admin_username = input.adminUsername;
  const document: Record<string, unknown> = {
    uuid: instanceUuid(identity),
    name: identity.vmName,
    hostname: identity.vmName,
    launch_index: 0,
    public_keys: Object.fromEntries(input.keys.map((key) => [key.name, key.line])),
    keys: input.keys.map((key) => ({ name: key.name, type: "ssh", data: key.line })),
    meta,
    devices: [],
  };
  if (input.adminPassword !== undefined && input.adminPassword !== "") {
    document.admin_pass = input.adminPassword;
  }
  return document;
}

/**
 * vendor_data.json: the operator's vendor-data under the `cloud-init` key,
 * which is where cloud-init takes it from; `{}` when there is none.
 */
export function vendorDataJson(vendorData: string): Record<string, string> {
  return vendorData === "" ? {} : { "cloud-init": vendorData };
}
