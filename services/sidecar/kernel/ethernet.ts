/**
 * Ethernet II facts shared by the packet code: ethertypes (<linux/if_ether.h>), where the
 * ethertype sits in a frame, and MAC addresses as text ("aa:bb:cc:dd:ee:ff") and bytes.
 */

/** Every protocol: a packet socket bound to it sees frames as they enter a bridge port. */
export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;

export const ETHERNET_HEADER_BYTES = 14;
/** The ethertype follows the destination and source MACs, big-endian. */
export const ETHERTYPE_OFFSET = 12;

/** The ethertype of an Ethernet II frame (0 when the frame is too short to carry one). */
export function ethertypeOf(frame: Uint8Array): number {
  if (frame.length < ETHERNET_HEADER_BYTES) return 0;
  return (frame[ETHERTYPE_OFFSET] << 8) | frame[ETHERTYPE_OFFSET + 1];
}

/** An ethertype as it appears on the wire (2 bytes, big-endian), e.g. for an nftables compare. */
export function ethertypeBytes(ethertype: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.of(ethertype >> 8, ethertype & 0xff);
}

export function parseMac(text: string): Uint8Array<ArrayBuffer> {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((part) => !/^[0-9a-fA-F]{2}$/.test(part))) {
    throw new Error(`"${text}" is not a MAC address (expected aa:bb:cc:dd:ee:ff)`);
  }
  return Uint8Array.from(parts.map((part) => parseInt(part, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 6)].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}
