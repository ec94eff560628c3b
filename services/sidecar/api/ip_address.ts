/**
 * IP addresses and prefixes as they appear in pod annotations: parsing that
 * refuses anything that is not an address, and a subnet containment test.
 */

export interface IpAddress {
  family: 4 | 6;
  /** The canonical text (IPv6 compressed and lower case). */
  text: string;
  value: bigint;
}

export interface IpSubnet {
  address: IpAddress;
  prefix: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]{2,45}$/;

export function parseIp(text: string): IpAddress | undefined {
  if (IPV4.test(text)) {
    const value = text.split(".").reduce((sum, part) => (sum << 8n) + BigInt(part), 0n);
    return { family: 4, text, value };
  }
  if (!IPV6_CHARS.test(text) || !text.includes(":")) return undefined;
  let canonical: string;
  try {
    canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  return { family: 6, text: canonical, value: ipv6Value(canonical) };
}

function ipv6Value(canonical: string): bigint {
  const [head, tail] = canonical.includes("::") ? canonical.split("::") : [canonical, undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? headGroups : [
    ...headGroups,
    ...Array(8 - headGroups.length - tailGroups.length).fill("0"),
    ...tailGroups,
  ];
  return groups.reduce((sum, group) => (sum << 16n) + BigInt(parseInt(group, 16)), 0n);
}

/** `ADDRESS/PREFIX`; undefined when either part is not valid. */
export function parseSubnet(text: string): IpSubnet | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (address.family === 4 ? 32 : 128)) return undefined;
  return { address, prefix };
}

export function subnetContains(subnet: IpSubnet, address: IpAddress): boolean {
  if (subnet.address.family !== address.family) return false;
  const bits = BigInt(address.family === 4 ? 32 : 128);
  const shift = bits - BigInt(subnet.prefix);
  return (subnet.address.value >> shift) === (address.value >> shift);
}

export function hostPrefix(address: IpAddress): number {
  return address.family === 4 ? 32 : 128;
}
