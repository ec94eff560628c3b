/**
 * IPv6 addresses as text ("fd00:ec2::254") and bytes, and prefixes ("fd00:ec2::254/128").
 */

/** The 16 bytes of an IPv6 address; undefined if `text` is not one (no zone index, no IPv4 tail). */
export function ipv6Bytes(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[0-9a-fA-F:]{2,39}$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): string[] | undefined => {
    if (part === "") return [];
    const list = part.split(":");
    return list.every((group) => /^[0-9a-fA-F]{1,4}$/.test(group)) ? list : undefined;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill("0"), ...tail];
  const out = new Uint8Array(16);
  all.forEach((group, index) => {
    const value = parseInt(group, 16);
    out[index * 2] = value >> 8;
    out[index * 2 + 1] = value & 0xff;
  });
  return out;
}

export function parseIpv6(text: string): Uint8Array<ArrayBuffer> {
  const bytes = ipv6Bytes(text);
  if (bytes === undefined) throw new Error(`"${text}" is not an IPv6 address`);
  return bytes;
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run (2+) of zero groups as "::". */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let index = 0; index < 16; index += 2) groups.push((bytes[index] << 8) | bytes[index + 1]);
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) [bestStart, bestLength] = [start, length];
  }
  const text = groups.map((group) => group.toString(16));
  if (bestStart < 0) return text.join(":");
  return `${text.slice(0, bestStart).join(":")}::${text.slice(bestStart + bestLength).join(":")}`;
}

/** "fd00:ec2::254/128" → address and prefix length; a bare address is /128. */
export function parseIpv6Cidr(text: string): { address: Uint8Array<ArrayBuffer>; prefix: number } {
  const [address, prefix = "128"] = text.split("/");
  const length = Number(prefix);
  if (!/^\d{1,3}$/.test(prefix) || length > 128) throw new Error(`"${text}" has a bad prefix`);
  return { address: parseIpv6(address), prefix: length };
}

/** fe80::/10: link-local unicast, reachable on one link only. */
export function isIpv6LinkLocal(bytes: Uint8Array): boolean {
  return bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80;
}
