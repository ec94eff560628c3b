/**
 * IPv4 addresses as text ("169.254.169.254"), bytes and numbers, prefixes ("10.0.0.0/8"), and
 * the link-local ranges of RFC 3927.
 */

/** The link-local network (RFC 3927 §1): reachable on the link only, never routed. */
export const LINK_LOCAL_PREFIX = "169.254.0.0/16";

/** The address as an unsigned 32-bit number, or undefined if it is not dotted IPv4. */
export function ipv4Number(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function parseIpv4(text: string): Uint8Array<ArrayBuffer> {
  const value = ipv4Number(text);
  if (value === undefined) throw new Error(`"${text}" is not an IPv4 address`);
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

export function formatIpv4(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 4)].join(".");
}

/** "10.0.0.0/8" → address and prefix length; a bare address is /32. */
export function parseCidr(text: string): { address: Uint8Array<ArrayBuffer>; prefix: number } {
  const [address, prefix = "32"] = text.split("/");
  const length = Number(prefix);
  if (!/^\d{1,2}$/.test(prefix) || length > 32) throw new Error(`"${text}" has a bad prefix`);
  return { address: parseIpv4(address), prefix: length };
}

/**
 * Whether prefix "a.b.c.d/n" contains `address`; its prefix length when it does, undefined
 * when it does not or either is malformed.
 */
export function prefixContains(cidr: string, address: string | number): number | undefined {
  const value = typeof address === "number" ? address : ipv4Number(address);
  const [network, prefixText] = cidr.split("/");
  const base = ipv4Number(network);
  const prefix = Number(prefixText ?? "32");
  if (
    value === undefined || base === undefined || !Number.isInteger(prefix) || prefix < 0 ||
    prefix > 32
  ) {
    return undefined;
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((base & mask) >>> 0) === ((value & mask) >>> 0) ? prefix : undefined;
}

/** Whether `address` is on the link-local network 169.254.0.0/16, reserved addresses included. */
export function onLinkLocalNetwork(address: string): boolean {
  return prefixContains(LINK_LOCAL_PREFIX, address) !== undefined;
}

const FIRST_LINK_LOCAL_UNICAST = ipv4Number("169.254.1.0")!;
const LAST_LINK_LOCAL_UNICAST = ipv4Number("169.254.254.255")!;

/**
 * RFC 3927 §2.1: hosts pick link-local addresses in 169.254.1.0 – 169.254.254.255; the first
 * and last 256 addresses of 169.254.0.0/16 are reserved.
 */
export function isLinkLocalUnicast(address: string): boolean {
  const value = ipv4Number(address);
  return value !== undefined && value >= FIRST_LINK_LOCAL_UNICAST &&
    value <= LAST_LINK_LOCAL_UNICAST;
}
