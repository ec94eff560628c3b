/**
 * Every name the sidecar's network code relies on, in one place: how KubeVirt names the
 * interfaces it makes in the virt-launcher pod's network namespace, and how the sidecar names
 * its own interfaces and nftables tables.
 *
 * KubeVirt, per VM interface (pkg/network): the pod interface is `eth0` (primary network),
 * `pod<11 hex>` (Multus, hashed names) or `net1`, `net2`… (Multus, legacy names); the VM's
 * bridge is `k6t-` + that name without a `pod` prefix, and its tap is `tap` + the same name
 * minus its first three letters (`tap0`, `tap<11 hex>`, `tap1`). With bridge binding the pod
 * interface moves into the bridge as `<name>-nic` and a placeholder keeps the original name
 * and address, while the bridge carries the fake DHCP server address 169.254.75.1N/32.
 *
 * The sidecar: each VM bridge gets one veth pair whose names are derived from the bridge name
 * alone, so a restarted sidecar finds (and reuses) the pair it made before. Linux interface
 * names are at most 15 bytes.
 */

/** The longest interface name Linux accepts (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME = 15;

// ---- KubeVirt's names ------------------------------------------------------------------------

/** Bridges KubeVirt creates for VM interfaces start with this. */
export const KUBEVIRT_BRIDGE_PREFIX = "k6t-";
/** KubeVirt names every VM port (the tap a VM's frames enter the bridge through) `tap…`. */
export const KUBEVIRT_TAP_PREFIX = "tap";
/** Bridge binding renames the pod interface `<name>-nic` and makes it a port of the bridge. */
export const KUBEVIRT_UPLINK_SUFFIX = "-nic";
/** Multus pod interfaces with hashed names are `pod<11 hex>`. */
const KUBEVIRT_HASHED_POD_PREFIX = "pod";
/** The fake address KubeVirt's DHCP server uses on a bridge-binding bridge (169.254.75.1N). */
export const KUBEVIRT_DHCP_SERVER_PREFIX = "169.254.75.";

/** True for names KubeVirt gives VM bridges (`k6t-eth0`, `k6t-<11 hex>`, `k6t-net1`). */
export function isVmBridgeName(name: string): boolean {
  return name.startsWith(KUBEVIRT_BRIDGE_PREFIX) && name.length > KUBEVIRT_BRIDGE_PREFIX.length;
}

/** True for a VM port: where a VM's frames enter its bridge (KubeVirt: tap0, tap1, tap<hash>). */
export function isVmPortName(name: string): boolean {
  return name.startsWith(KUBEVIRT_TAP_PREFIX);
}

/**
 * KubeVirt's tap name for a bridge: `k6t-eth0` → tap0, `k6t-net1` → tap1 (tap + pod
 * interface name minus its first three letters), `k6t-<11 hex>` → tap<11 hex> (the pod
 * interface was pod<11 hex>).
 */
export function kubevirtTapName(bridge: string): string | undefined {
  if (!bridge.startsWith(KUBEVIRT_BRIDGE_PREFIX)) return undefined;
  const rest = bridge.slice(KUBEVIRT_BRIDGE_PREFIX.length);
  if (/^[0-9a-f]{11}$/.test(rest)) return `${KUBEVIRT_TAP_PREFIX}${rest}`;
  return rest.length > 3 ? `${KUBEVIRT_TAP_PREFIX}${rest.slice(3)}` : undefined;
}

/** True for the pod interface bridge binding moved into a bridge (`eth0-nic`, `<hash>-nic`). */
export function isUplinkName(name: string): boolean {
  return name.endsWith(KUBEVIRT_UPLINK_SUFFIX);
}

/**
 * The names the placeholder of uplink `<name>-nic` may have: `<name>`, or `pod<name>` for a
 * hashed Multus interface (`pod<11 hex>-nic` would pass 15 bytes, so KubeVirt drops `pod`).
 */
export function placeholderNames(uplink: string): string[] {
  const name = uplink.slice(0, -KUBEVIRT_UPLINK_SUFFIX.length);
  return [name, `${KUBEVIRT_HASHED_POD_PREFIX}${name}`];
}

/** True for KubeVirt's DHCP server address on a bridge-binding bridge. */
export function isKubevirtDhcpServerAddress(address: string): boolean {
  return address.startsWith(KUBEVIRT_DHCP_SERVER_PREFIX);
}

// ---- the sidecar's names ---------------------------------------------------------------------

/** The loopback interface: the pod's own clients (and passt's sockets) arrive there. */
export const LOOPBACK = "lo";
/** The start of every sidecar-end veth name ("imds-eth0"). */
export const SIDECAR_VETH_PREFIX = "imds-";
/** The start of every bridge-side veth name ("imdb-eth0"). */
export const BRIDGE_SIDE_VETH_PREFIX = "imdb-";

/** The nftables table (family bridge) that intercepts bridge-binding guests' traffic. */
export const INTERCEPT_TABLE_NAME = "kubevirt-imds";
/** The nftables tables (families ip and bridge) of the ingress guard. */
export const GUARD_TABLE_NAME = "kubevirt-imds-guard";
/** The ip and ip6 tables that set the TTL / hop limit of the service's replies. */
export const HOP_LIMIT_TABLE_NAME = "kubevirt-imds-hop-limit";

export interface VethNames {
  /** The end in the pod namespace that carries the metadata address ("imds-eth0"). */
  sidecar: string;
  /** The end enslaved to the VM bridge ("imdb-eth0"). */
  bridgeSide: string;
}

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
  const rest = bridge.startsWith(KUBEVIRT_BRIDGE_PREFIX)
    ? bridge.slice(KUBEVIRT_BRIDGE_PREFIX.length)
    : "";
  const id = rest.length > 0 && rest.length <= 10 && /^[A-Za-z0-9_]+$/.test(rest)
    ? rest
    : nameHash(bridge).slice(0, 10);
  return { sidecar: `${SIDECAR_VETH_PREFIX}${id}`, bridgeSide: `${BRIDGE_SIDE_VETH_PREFIX}${id}` };
}
