/**
 * The datasource a VM's cloud-init detects (annotation imds.kubevirt.io/datasource):
 * `nocloud` (default) through the DMI serial, `openstack` through the DMI
 * chassis asset tag "OpenStack Compute" (spec.domain.chassis.asset), which
 * makes cloud-init pick its OpenStack datasource and read /openstack/… Both
 * APIs are always served; Windows guests (cloudbase-init) ask the OpenStack
 * API without any detection.
 */

import { ANNOTATIONS, DATASOURCES, OPENSTACK_ASSET_TAG } from "../shared/contract.ts";
import { setDomainField } from "./domain_field.ts";
import type { JsonObject } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { quote, type Reading } from "./opt_in.ts";

export type Datasource = (typeof DATASOURCES)[keyof typeof DATASOURCES];

/** The datasource the annotations ask for; an unknown value warns and means the default. */
export function readDatasource(annotations: Record<string, unknown>): Reading<Datasource> {
  const value = annotations[ANNOTATIONS.datasource];
  if (value === undefined || value === "" || value === DATASOURCES.nocloud) {
    return { value: DATASOURCES.nocloud, warnings: [] };
  }
  if (value === DATASOURCES.openstack) return { value: DATASOURCES.openstack, warnings: [] };
  return {
    value: DATASOURCES.nocloud,
    warnings: [
      `${ANNOTATIONS.datasource} is ${
        quote(value)
      }; expected "${DATASOURCES.nocloud}" or "${DATASOURCES.openstack}", so ${DATASOURCES.nocloud} is used`,
    ],
  };
}

/**
 * Sets the chassis asset tag in the domain at `domainAt` when it is unset;
 * keeps any other tag with a warning (cloud-init then does not detect OpenStack).
 */
export function openstackAssetTag(vm: JsonObject, domainAt: readonly string[]): Mutation {
  const field = {
    at: ["chassis", "asset"],
    value: OPENSTACK_ASSET_TAG,
    reasons: { set: "OpenStack asset tag set", blocked: "asset tag path blocked" },
  };
  return setDomainField(vm, domainAt, field, ({ current: asset, name }) => {
    if (asset === OPENSTACK_ASSET_TAG) return unchanged("OpenStack asset tag already set");
    return unchanged("user's asset tag kept", [
      `${name} is kept as ${
        quote(asset)
      }; cloud-init detects the OpenStack datasource only with "${OPENSTACK_ASSET_TAG}" (cloudbase-init on Windows needs no detection)`,
    ]);
  });
}
