/**
 * The DMI serial of an opted-in VM: what it must be for cloud-init to find
 * the metadata service, and what to do with the serial the VM has.
 *
 * KubeVirt 1.5.3, 1.6.1 and newer give every VirtualMachine created without a
 * serial a random one (`setFirmwareDefaultsIfEmpty` in its VM mutating
 * webhook: a lowercase RFC 4122 version 4 UUID). Whether that happens before
 * or after this webhook depends on the order the API server calls the two
 * webhooks in, and VMs created before this webhook ran keep theirs. Such a
 * serial is therefore replaced; any other serial is the user's and is kept,
 * with a warning. A UUID the user wrote in exactly that form cannot be told
 * apart from KubeVirt's and is replaced too (see README, cloud-init serial).
 */

import { METADATA_ADDRESS, NOCLOUD_SERIAL, NOCLOUD_SERIAL_V6 } from "../shared/contract.ts";
import { setDomainField } from "./domain_field.ts";
import { type JsonObject, type JsonValue, pointer } from "./json_patch.ts";
import { type Mutation, unchanged } from "./mutation.ts";
import { quote } from "./opt_in.ts";

/** The serial without `;dsmode=net`, which cloud-init 22.x fetches and then discards. */
const SERIAL_WITHOUT_DSMODE = `ds=nocloud;s=http://${METADATA_ADDRESS}/v1/`;

/** How KubeVirt's default serial looks: `uuid.New().String()` in Go (random, version 4). */
const KUBEVIRT_DEFAULT_SERIAL =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** True for a serial in the form KubeVirt generates when a VM is created without one. */
export function isKubevirtDefaultSerial(serial: JsonValue | undefined): boolean {
  return typeof serial === "string" && KUBEVIRT_DEFAULT_SERIAL.test(serial);
}

/** The serials this webhook writes: IPv4 and IPv6 seed URLs (ANNOTATIONS.seedAddress picks). */
const OUR_SERIALS: readonly string[] = [NOCLOUD_SERIAL, NOCLOUD_SERIAL_V6];

/**
 * Sets the NoCloud serial `wanted` (NOCLOUD_SERIAL or NOCLOUD_SERIAL_V6) in the domain at
 * `domainAt` (a VM's `spec.template.spec.domain` or a VMI's `spec.domain`) when it is unset,
 * KubeVirt's default or the other one of ours; keeps any other serial with a warning.
 */
export function nocloudSerial(
  vm: JsonObject,
  domainAt: readonly string[],
  wanted: string = NOCLOUD_SERIAL,
): Mutation {
  const field = {
    at: ["firmware", "serial"],
    value: wanted,
    reasons: { set: "serial set", blocked: "serial path blocked" },
  };
  return setDomainField(vm, domainAt, field, ({ current: serial, at, name }) => {
    if (serial === wanted) return unchanged("serial already set");
    if (isKubevirtDefaultSerial(serial) || OUR_SERIALS.includes(serial as string)) {
      return {
        operations: [{ op: "replace", path: pointer(at), value: wanted }],
        warnings: [],
        reason: OUR_SERIALS.includes(serial as string)
          ? "seed address changed"
          : "KubeVirt's default serial replaced",
      };
    }
    if (serial === SERIAL_WITHOUT_DSMODE) {
      return unchanged("user's serial kept", [
        `${name} is kept as written; add ";dsmode=net" to it, or cloud-init 22.x fetches the metadata and discards it`,
      ]);
    }
    return unchanged("user's serial kept", [
      `${name} is kept as ${
        quote(serial)
      }; cloud-init uses the metadata service only with "${wanted}"`,
    ]);
  });
}
