/**
 * Multus's `k8s.v1.cni.cncf.io/network-status` annotation: a JSON list with
 * one entry per pod interface (network name, interface name, IPs without a
 * prefix length, MAC, gateways, DNS, and for SR-IOV a PCI device). Parsed
 * strictly: anything malformed is refused with a sentence naming the entry.
 */

import { type IpAddress, parseIp } from "./ip_address.ts";

export interface PodInterfaceStatus {
  /** The network: the cluster network's name for the default one, `namespace/name` of a NetworkAttachmentDefinition otherwise. */
  network: string;
  /** The interface name inside the pod (`eth0`, `pod<hash>`, `net1`…); undefined when Multus did not say. */
  interface?: string;
  ips: IpAddress[];
  /** Lower case `aa:bb:cc:dd:ee:ff`; undefined when Multus did not say. */
  mac?: string;
  gateways: IpAddress[];
  /** True for the pod's default (cluster) network. */
  default: boolean;
  dns: { nameservers: IpAddress[]; domain?: string; search: string[] };
  /** A device passed to the VM whole (SR-IOV VF, `device-info.type` "pci"). */
  pciDevice: boolean;
}

export type NetworkStatusParse =
  | { interfaces: PodInterfaceStatus[] }
  | { error: string };

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const DNS_NAME = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?\.?$/;

type JsonRecord = Record<string, unknown>;

function isRecord(value: unknown): value is JsonRecord {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseNetworkStatus(text: string): NetworkStatusParse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { error: `it is not valid JSON (${(error as Error).message})` };
  }
  if (!Array.isArray(parsed)) return { error: "it is not a JSON list" };
  const interfaces: PodInterfaceStatus[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const entry = parseEntry(parsed[i]);
    if ("error" in entry) return { error: `entry ${i + 1}: ${entry.error}` };
    interfaces.push(entry.value);
  }
  return { interfaces };
}

function parseEntry(entry: unknown): { value: PodInterfaceStatus } | { error: string } {
  if (!isRecord(entry)) return { error: "not a JSON object" };
  if (typeof entry.name !== "string" || entry.name === "") {
    return { error: `"name" must be a non-empty string` };
  }
  const where = `network ${JSON.stringify(entry.name)}`;
  const value: PodInterfaceStatus = {
    network: entry.name,
    ips: [],
    gateways: [],
    default: entry.default === true,
    dns: { nameservers: [], search: [] },
    pciDevice: isRecord(entry["device-info"]) && entry["device-info"].type === "pci",
  };
  if (entry.interface !== undefined) {
    if (typeof entry.interface !== "string" || entry.interface === "") {
      return { error: `${where}: "interface" must be a non-empty string` };
    }
    value.interface = entry.interface;
  }
  if (entry.mac !== undefined && entry.mac !== "") {
    if (typeof entry.mac !== "string" || !MAC.test(entry.mac)) {
      return { error: `${where}: "mac" ${JSON.stringify(entry.mac)} is not a MAC address` };
    }
    value.mac = entry.mac.toLowerCase();
  }
  for (const [field, target] of [["ips", value.ips], ["gateway", value.gateways]] as const) {
    const list = entry[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) return { error: `${where}: "${field}" must be a list` };
    for (const item of list) {
      const address = typeof item === "string" ? parseIp(item) : undefined;
      if (address === undefined) {
        return { error: `${where}: ${JSON.stringify(item)} in "${field}" is not an IP address` };
      }
      target.push(address);
    }
  }
  if (entry.dns !== undefined && entry.dns !== null) {
    if (!isRecord(entry.dns)) return { error: `${where}: "dns" must be an object` };
    const dns = parseDns(entry.dns);
    if ("error" in dns) return { error: `${where}: ${dns.error}` };
    value.dns = dns.value;
  }
  return { value };
}

function parseDns(
  dns: JsonRecord,
): { value: PodInterfaceStatus["dns"] } | { error: string } {
  const value: PodInterfaceStatus["dns"] = { nameservers: [], search: [] };
  if (dns.nameservers !== undefined) {
    if (!Array.isArray(dns.nameservers)) return { error: `"dns.nameservers" must be a list` };
    for (const item of dns.nameservers) {
      const address = typeof item === "string" ? parseIp(item) : undefined;
      if (address === undefined) {
        return { error: `${JSON.stringify(item)} in "dns.nameservers" is not an IP address` };
      }
      value.nameservers.push(address);
    }
  }
  if (dns.domain !== undefined && dns.domain !== "") {
    if (typeof dns.domain !== "string" || !DNS_NAME.test(dns.domain)) {
      return { error: `"dns.domain" ${JSON.stringify(dns.domain)} is not a domain name` };
    }
    value.domain = dns.domain;
  }
  if (dns.search !== undefined) {
    if (!Array.isArray(dns.search)) return { error: `"dns.search" must be a list` };
    for (const item of dns.search) {
      if (typeof item !== "string" || !DNS_NAME.test(item)) {
        return { error: `${JSON.stringify(item)} in "dns.search" is not a domain name` };
      }
      value.search.push(item);
    }
  }
  return { value };
}
