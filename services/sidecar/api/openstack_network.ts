/**
 * OpenStack `network_data.json` (links, networks, services) for the guest:
 * the user's NoCloud network-config (version 1 or 2) translated, or, when
 * there is none, the NIC the request came from, by MAC, with DHCP. This is
 * how cloud-init's OpenStack datasource (any release) and cloudbase-init get
 * network settings; NoCloud over HTTP carries them only from cloud-init 24.3.
 *
 * Only what network_data.json can say is translated: physical NICs (matched
 * by MAC, or named), DHCP, static addresses, routes and DNS servers. Bonds,
 * VLANs, bridges and DNS search domains are left out, each named in `skipped`.
 */

export interface NetworkData {
  links: Link[];
  networks: Network[];
  services: Service[];
}

export interface Link {
  id: string;
  type: "phy";
  ethernet_mac_address?: string;
  name?: string;
  mtu?: number;
}

export interface Network {
  id: string;
  link: string;
  type: string;
  ip_address?: string;
  netmask?: string;
  routes?: Route[];
  services?: Service[];
}

export interface Route {
  network: string;
  netmask: string;
  gateway: string;
}

export interface Service {
  type: "dns";
  address: string;
}

export interface Translation {
  data: NetworkData;
  /** What could not be expressed, one phrase each, for the log. */
  skipped: string[];
}

/** One DHCP link for the guest NIC with this MAC. */
export function dhcpNetworkData(mac: string): NetworkData {
  return {
    links: [{ id: "eth0", type: "phy", ethernet_mac_address: mac }],
    networks: [{ id: "network0", link: "eth0", type: "ipv4_dhcp" }],
    services: [],
  };
}

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Translates a parsed network-config document (with or without a top-level `network:`). */
export function translateNetworkConfig(document: unknown): Translation {
  const config = isDict(document) && isDict(document.network) ? document.network : document;
  const builder = newBuilder();
  if (!isDict(config)) {
    builder.skipped.push("the network-config is not a mapping");
  } else if (config.version === 1 || config.version === "1") {
    translateV1(config, builder);
  } else if (config.version === 2 || config.version === "2") {
    translateV2(config, builder);
  } else {
    builder.skipped.push(`network-config version ${JSON.stringify(config.version)} is not 1 or 2`);
  }
  return { data: builder.data, skipped: builder.skipped };
}

interface Subnet {
  kind: "dhcp4" | "dhcp6" | "slaac" | "static";
  address?: string;
  routes: Route[];
  dns: string[];
}

/** The document being built and what was left out. */
interface Builder {
  data: NetworkData;
  skipped: string[];
}

function newBuilder(): Builder {
  return { data: { links: [], networks: [], services: [] }, skipped: [] };
}

function addLink(
  builder: Builder,
  id: string,
  nic: { mac: unknown; name: unknown; mtu: unknown },
  subnets: Subnet[],
): void {
  const link: Link = { id, type: "phy" };
  if (typeof nic.mac === "string" && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(nic.mac)) {
    link.ethernet_mac_address = nic.mac.toLowerCase();
  } else if (nic.mac !== undefined) {
    builder.skipped.push(`${id}: MAC address ${JSON.stringify(nic.mac)} is not valid`);
  }
  if (typeof nic.name === "string" && nic.name !== "") link.name = nic.name;
  if (link.ethernet_mac_address === undefined && link.name === undefined) {
    builder.skipped.push(`${id}: matched neither by MAC address nor by name`);
    return;
  }
  if (typeof nic.mtu === "number" && Number.isInteger(nic.mtu) && nic.mtu > 0) link.mtu = nic.mtu;
  builder.data.links.push(link);
  for (const subnet of subnets) addNetwork(builder, id, subnet);
}

function addNetwork(builder: Builder, link: string, subnet: Subnet): void {
  const id = `network${builder.data.networks.length}`;
  if (subnet.kind !== "static") {
    const type = { dhcp4: "ipv4_dhcp", dhcp6: "ipv6_dhcp", slaac: "ipv6_slaac" }[subnet.kind];
    builder.data.networks.push({ id, link, type });
    return;
  }
  const parsed = parseAddress(subnet.address);
  if (parsed === undefined) {
    builder.skipped.push(`${link}: address ${JSON.stringify(subnet.address)} is not IP/PREFIX`);
    return;
  }
  const network: Network = {
    id,
    link,
    type: parsed.v6 ? "ipv6" : "ipv4",
    ip_address: parsed.address,
    netmask: parsed.netmask,
    routes: subnet.routes.filter((route) => route.network.includes(":") === parsed.v6),
  };
  const dns = subnet.dns.map((address) => ({ type: "dns" as const, address }));
  if (dns.length > 0) network.services = dns;
  builder.data.networks.push(network);
  addDns(builder, subnet.dns);
}

function addDns(builder: Builder, addresses: unknown): void {
  for (const address of strings(addresses)) {
    if (!builder.data.services.some((service) => service.address === address)) {
      builder.data.services.push({ type: "dns", address });
    }
  }
}

function strings(value: unknown): string[] {
  if (typeof value === "string") return value.split(/[\s,]+/).filter((word) => word !== "");
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : [];
}

function translateV1(config: Dict, builder: Builder): void {
  const items = Array.isArray(config.config) ? config.config : [];
  items.forEach((item, index) => {
    if (!isDict(item)) return;
    const id = typeof item.name === "string" ? item.name : `eth${index}`;
    if (item.type === "nameserver") {
      addDns(builder, item.address);
      if (item.search !== undefined) builder.skipped.push("DNS search domains");
      return;
    }
    if (item.type !== "physical") {
      builder.skipped.push(`${id}: type ${JSON.stringify(item.type)}`);
      return;
    }
    const subnets: Subnet[] = [];
    for (const subnet of Array.isArray(item.subnets) ? item.subnets : []) {
      if (!isDict(subnet)) continue;
      const type = String(subnet.type);
      if (type === "dhcp" || type === "dhcp4") subnets.push(dynamic("dhcp4"));
      else if (type === "dhcp6") subnets.push(dynamic("dhcp6"));
      else if (type === "ipv6_slaac") subnets.push(dynamic("slaac"));
      else if (type === "static" || type === "static6") {
        let address = typeof subnet.address === "string" ? subnet.address : undefined;
        if (address !== undefined && !address.includes("/") && typeof subnet.netmask === "string") {
          const prefix = maskToPrefix(subnet.netmask);
          if (prefix !== undefined) address = `${address}/${prefix}`;
        }
        const routes = v1Routes(subnet.routes);
        if (typeof subnet.gateway === "string") routes.unshift(defaultRoute(subnet.gateway));
        subnets.push({ kind: "static", address, routes, dns: strings(subnet.dns_nameservers) });
        if (subnet.dns_search !== undefined) builder.skipped.push("DNS search domains");
      } else builder.skipped.push(`${id}: subnet type ${JSON.stringify(type)}`);
    }
    addLink(builder, id, { mac: item.mac_address, name: item.name, mtu: item.mtu }, subnets);
  });
}

function translateV2(config: Dict, builder: Builder): void {
  for (const section of ["bonds", "bridges", "vlans", "wifis"]) {
    if (isDict(config[section])) builder.skipped.push(section);
  }
  const ethernets = isDict(config.ethernets) ? config.ethernets : {};
  for (const [id, value] of Object.entries(ethernets)) {
    if (!isDict(value)) continue;
    const match = isDict(value.match) ? value.match : {};
    const subnets: Subnet[] = [];
    if (value.dhcp4 === true || value.dhcp4 === "true" || value.dhcp4 === "yes") {
      subnets.push(dynamic("dhcp4"));
    }
    if (value.dhcp6 === true || value.dhcp6 === "true" || value.dhcp6 === "yes") {
      subnets.push(dynamic("dhcp6"));
    }
    const routes: Route[] = [];
    for (const [key, network] of [["gateway4", "0.0.0.0"], ["gateway6", "::"]]) {
      if (typeof value[key] === "string") routes.push(defaultRoute(value[key] as string, network));
    }
    for (const route of Array.isArray(value.routes) ? value.routes : []) {
      if (!isDict(route) || typeof route.via !== "string") continue;
      const to = route.to === "default" || route.to === undefined
        ? (route.via.includes(":") ? "::/0" : "0.0.0.0/0")
        : String(route.to);
      const parsed = parseAddress(to);
      if (parsed) {
        routes.push({ network: parsed.network, netmask: parsed.netmask, gateway: route.via });
      }
    }
    const nameservers = isDict(value.nameservers) ? value.nameservers : {};
    if (nameservers.search !== undefined) builder.skipped.push("DNS search domains");
    for (const address of strings(value.addresses)) {
      subnets.push({ kind: "static", address, routes, dns: strings(nameservers.addresses) });
    }
    addDns(builder, nameservers.addresses);
    const name = typeof value["set-name"] === "string" ? value["set-name"] : undefined;
    addLink(builder, id, {
      mac: match.macaddress ?? value.macaddress,
      name: name ?? match.name,
      mtu: value.mtu,
    }, subnets);
  }
}

function dynamic(kind: "dhcp4" | "dhcp6" | "slaac"): Subnet {
  return { kind, routes: [], dns: [] };
}

function defaultRoute(gateway: string, network = gateway.includes(":") ? "::" : "0.0.0.0"): Route {
  return { network, netmask: network.includes(":") ? "::" : "0.0.0.0", gateway };
}

function v1Routes(value: unknown): Route[] {
  const routes: Route[] = [];
  for (const route of Array.isArray(value) ? value : []) {
    if (!isDict(route) || typeof route.gateway !== "string") continue;
    const destination = String(route.network ?? route.destination ?? "");
    let parsed = parseAddress(destination);
    if (parsed === undefined && typeof route.netmask === "string") {
      const prefix = maskToPrefix(route.netmask);
      if (prefix !== undefined) parsed = parseAddress(`${destination}/${prefix}`);
    }
    if (parsed) {
      routes.push({ network: parsed.network, netmask: parsed.netmask, gateway: route.gateway });
    }
  }
  return routes;
}

interface ParsedAddress {
  v6: boolean;
  address: string;
  network: string;
  netmask: string;
}

/** `10.0.0.5/24` → address, its network and the netmask; undefined when malformed. */
export function parseAddress(text: string | undefined): ParsedAddress | undefined {
  if (text === undefined) return undefined;
  const [address, prefixText, extra] = text.trim().split("/");
  if (extra !== undefined || prefixText === undefined || !/^\d{1,3}$/.test(prefixText)) {
    return undefined;
  }
  const prefix = Number(prefixText);
  if (address.includes(":")) {
    const words = ipv6Words(address);
    if (words === undefined || prefix > 128) return undefined;
    const mask = Array.from({ length: 8 }, (_, i) => maskWord(prefix - i * 16, 16));
    return {
      v6: true,
      address,
      network: ipv6Text(words.map((word, i) => word & mask[i])),
      netmask: ipv6Text(mask),
    };
  }
  const octets = address.split(".").map(Number);
  if (
    octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255) ||
    prefix > 32
  ) return undefined;
  const mask = Array.from({ length: 4 }, (_, i) => maskWord(prefix - i * 8, 8));
  return {
    v6: false,
    address,
    network: octets.map((octet, i) => octet & mask[i]).join("."),
    netmask: mask.join("."),
  };
}

function maskWord(bits: number, width: number): number {
  const ones = Math.max(0, Math.min(width, bits));
  return ((1 << width) - 1) ^ ((1 << (width - ones)) - 1);
}

/** `255.255.255.0` or `ffff:ffff::` → its prefix length. */
function maskToPrefix(mask: string): number | undefined {
  const bits = mask.includes(":")
    ? ipv6Words(mask)?.map((word) => word.toString(2).padStart(16, "0")).join("")
    : mask.split(".").map((octet) => Number(octet).toString(2).padStart(8, "0")).join("");
  if (bits === undefined || !/^1*0*$/.test(bits)) return undefined;
  return bits.indexOf("0") < 0 ? bits.length : bits.indexOf("0");
}

function ipv6Words(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const words = [...head, ...Array(missing).fill("0"), ...tail];
  if (words.some((word) => !/^[0-9a-fA-F]{1,4}$/.test(word))) return undefined;
  return words.map((word) => parseInt(word, 16));
}

function ipv6Text(words: number[]): string {
  const hex = words.map((word) => word.toString(16));
  // Shorten the longest run of zero words, as RFC 5952 does.
  let best = { at: -1, length: 0 };
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.length && j - i > 1) best = { at: i, length: j - i };
    i = j;
  }
  if (best.at < 0) return hex.join(":");
  return `${hex.slice(0, best.at).join(":")}::${hex.slice(best.at + best.length).join(":")}`;
}
