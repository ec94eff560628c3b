/**
 * The MAC address of the guest NIC a request came from, read from the pod's
 * IPv4 neighbour table (/proc/net/arp): to answer the guest, the pod's kernel
 * has resolved its address, so a complete entry exists while the connection
 * is open. Undefined for IPv6, loopback or relayed (passt) clients.
 */

const ATF_COM = 0x2;

/** The table is read at most once per this many milliseconds. */
const CACHE_MS = 1000;

export type ClientMacLookup = (client: string) => string | undefined;

export function clientMacLookup(table = "/proc/net/arp"): ClientMacLookup {
  let cached: { at: number; entries: Map<string, string> } | undefined;
  return (client) => {
    const address = client.startsWith("::ffff:") ? client.slice(7) : client;
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return undefined;
    const now = Date.now();
    if (cached === undefined || now - cached.at > CACHE_MS || !cached.entries.has(address)) {
      cached = { at: now, entries: readTable(table) };
    }
    return cached.entries.get(address);
  };
}

/** IPv4 address → MAC for every complete entry; on a duplicate the first wins. */
export function parseArpTable(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split("\n").slice(1)) {
    const [ip, _type, flags, mac] = line.trim().split(/\s+/);
    if (mac === undefined || (Number(flags) & ATF_COM) === 0) continue;
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac) || mac === "00:00:00:00:00:00") continue;
    if (!entries.has(ip)) entries.set(ip, mac.toLowerCase());
  }
  return entries;
}

function readTable(path: string): Map<string, string> {
  try {
    return parseArpTable(Deno.readTextFileSync(path));
  } catch {
    return new Map();
  }
}
