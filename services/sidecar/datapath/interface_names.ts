/**
 * Names of the sidecar's interfaces. Each VM bridge gets one veth pair whose names are derived
 * from the bridge name alone, so a restarted sidecar finds (and reuses) the pair it made before.
 * Linux interface names are at most 15 bytes.
 */

import { KUBEVIRT } from "../../shared/contract.ts";

/** The longest interface name Linux accepts (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME = 15;

export interface VethNames {
  /** The end in the pod namespace that carries the metadata address ("imds-eth0"). */
  sidecar: string;
  /** The end enslaved to the VM bridge ("imdb-eth0"). */
  bridgeSide: string;
}

/** The start of every sidecar-end veth name ("imds-eth0"). */
export const SIDECAR_VETH_PREFIX = "imds-";

/** 64-bit FNV-1a of the name, as 16 hex digits: stable across releases and runs. */
export function nameHash(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

/**
 * `k6t-eth0` → imds-eth0 / imdb-eth0; `k6t-net1` → imds-net1 / imdb-net1. Names whose
 * remainder does not fit in 10 characters (Multus `k6t-<11 hex>`, or any bridge named by
 * IMDS_BRIDGE_NAME) use 10 hex digits of a hash of the whole bridge name instead.
 */
export function vethNames(bridge: string): VethNames {
  const rest = bridge.startsWith(KUBEVIRT.bridgePrefix)
    ? bridge.slice(KUBEVIRT.bridgePrefix.length)
    : "";
  const id = rest.length > 0 && rest.length <= 10 && /^[A-Za-z0-9_]+$/.test(rest)
    ? rest
    : nameHash(bridge).slice(0, 10);
  return { sidecar: `${SIDECAR_VETH_PREFIX}${id}`, bridgeSide: `imdb-${id}` };
}

/** True for names KubeVirt gives VM bridges (`k6t-eth0`, `k6t-<11 hex>`, `k6t-net1`). */
export function isVmBridgeName(name: string): boolean {
  return name.startsWith(KUBEVIRT.bridgePrefix) && name.length > KUBEVIRT.bridgePrefix.length;
}
