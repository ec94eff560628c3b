/**
 * Network configuration for the guest from the pod's Multus network-status:
 * which pod interfaces are VM NICs, what each NIC gets, and the two documents
 * cloud-init reads (NoCloud `network-config` version 2, OpenStack
 * `network_data.json`), every NIC matched by its MAC.
 *
 * KubeVirt's conventions decide the mapping:
 * - the pod network is `eth0`; a Multus network is `pod<11 hex>` (KubeVirt
 *   1.0+) or `net<N>` (older pods); other entries are no VM NIC;
 * - a bridge-bound or SR-IOV NIC carries the MAC Multus reports for its pod
 *   interface; a masquerade or passt NIC on the pod network does not (its MAC
 *   is given separately, or the pod's is used);
 * - KubeVirt's DHCP serves the pod network, and a bridge-bound secondary NIC
 *   whose pod interface has an IPv4 address (IPv4 only); SR-IOV NICs and
 *   IPv6 addresses get no DHCP from it. Those NICs keep DHCP for IPv4 in the
 *   generated document; everything else gets static addresses.
 *
 * network-status lists addresses without their prefix length: an address
 * inside one of the configured subnets takes that subnet's prefix, any other
 * a host prefix (/32, /128) with its gateway reached on-link.
 */

import { hostPrefix, type IpAddress, type IpSubnet, subnetContains } from "./ip_address.ts";
import type { PodInterfaceStatus } from "./network_status.ts";

export interface PodNetworkOptions {
  /** Subnets the pod's addresses belong to; they give the prefix lengths. */
  subnets: readonly IpSubnet[];
  /** Pod interfaces the pod asked Multus for: network-status is complete once it lists them all. */
  expectedInterfaces: readonly string[];
  /** The guest MAC of the pod network's NIC when it is not the pod's (masquerade, passt). */
  primaryMac?: string;
}

export interface GuestAddress {
  address: IpAddress;
  prefix: number;
}

/** One VM NIC as the guest must configure it. */
export interface GuestNic {
  /** The pod interface (eth0, pod<hash>, net<N>): unique, used as the document's id for the NIC. */
  podInterface: string;
  network: string;
  mac: string;
  /** KubeVirt's DHCP gives this NIC its IPv4 address. */
  dhcp4: boolean;
  /** Ask for IPv6 by DHCPv6 (the pod network with IPv6: masquerade serves it). */
  dhcp6: boolean;
  addresses: GuestAddress[];
  /** Default routes: via these gateways (on-link when outside every address's subnet). */
  gateways: { via: IpAddress; onLink: boolean }[];
  nameservers: IpAddress[];
  search: string[];
}

export type GuestNicPlan =
  | { nics: GuestNic[] }
  /** network-status is not complete yet: the sentence says what is missing. */
  | { pending: string }
  /** network-status cannot give a correct document: the sentence says why. */
  | { error: string };

const VM_NIC_INTERFACE = /^(eth0|pod[0-9a-f]{11}|net[1-9][0-9]{0,3})$/;
const PRIMARY_INTERFACE = "eth0";

export function planGuestNics(
  statuses: readonly PodInterfaceStatus[],
  options: PodNetworkOptions,
): GuestNicPlan {
  const listed = new Set(statuses.map(interfaceOf));
  const missing = options.expectedInterfaces.filter((name) => !listed.has(name));
  if (missing.length > 0) {
    return {
      pending: `network-status does not list the pod interface${missing.length > 1 ? "s" : ""} ${
        missing.join(", ")
      } yet`,
    };
  }
  const nics: GuestNic[] = [];
  const macs = new Map<string, string>();
  for (const status of statuses) {
    const podInterface = interfaceOf(status);
    if (podInterface === undefined || !VM_NIC_INTERFACE.test(podInterface)) continue;
    const primary = podInterface === PRIMARY_INTERFACE;
    const mac = primary ? options.primaryMac ?? status.mac : status.mac;
    if (mac === undefined) {
      return {
        error: `network-status gives no MAC for pod interface ${podInterface} (network ${
          JSON.stringify(status.network)
        }), so the guest's NIC cannot be matched`,
      };
    }
    const other = macs.get(mac);
    if (other !== undefined) {
      return { error: `pod interfaces ${other} and ${podInterface} have the same MAC ${mac}` };
    }
    macs.set(mac, podInterface);
    nics.push(primary ? primaryNic(status, mac) : secondaryNic(status, podInterface, mac, options));
  }
  return { nics };
}

function interfaceOf(status: PodInterfaceStatus): string | undefined {
  return status.interface ?? (status.default ? PRIMARY_INTERFACE : undefined);
}

/** The pod network: KubeVirt's DHCP (masquerade, bridge) or passt configure it. */
function primaryNic(status: PodInterfaceStatus, mac: string): GuestNic {
  return {
    podInterface: PRIMARY_INTERFACE,
    network: status.network,
    mac,
    dhcp4: true,
    dhcp6: status.ips.some((ip) => ip.family === 6),
    addresses: [],
    gateways: [],
    nameservers: [],
    search: [],
  };
}

function secondaryNic(
  status: PodInterfaceStatus,
  podInterface: string,
  mac: string,
  options: PodNetworkOptions,
): GuestNic {
  const dhcp4 = !status.pciDevice && status.ips.some((ip) => ip.family === 4);
  const addresses = status.ips
    .filter((ip) => !(dhcp4 && ip.family === 4))
    .map((address) => ({ address, prefix: prefixOf(address, options.subnets) }));
  const gateways = status.gateways
    .filter((via) => !(dhcp4 && via.family === 4))
    .filter((via, index, all) => all.findIndex((g) => g.family === via.family) === index)
    .map((via) => ({
      via,
      onLink: !addresses.some((a) =>
        a.address.family === via.family &&
        subnetContains({ address: a.address, prefix: a.prefix }, via)
      ),
    }));
  const search = status.dns.domain === undefined
    ? status.dns.search
    : [status.dns.domain, ...status.dns.search.filter((name) => name !== status.dns.domain)];
  return {
    podInterface,
    network: status.network,
    mac,
    dhcp4,
    dhcp6: false,
    addresses,
    gateways,
    nameservers: status.dns.nameservers,
    search,
  };
}

function prefixOf(address: IpAddress, subnets: readonly IpSubnet[]): number {
  return subnets.find((subnet) => subnetContains(subnet, address))?.prefix ?? hostPrefix(address);
}

const DEFAULT_ROUTE = { 4: "0.0.0.0/0", 6: "::/0" } as const;

/** NoCloud `network-config`, version 2 (netplan's format), as YAML. */
export function networkConfigV2(nics: readonly GuestNic[]): string {
  const lines = ["version: 2", "ethernets:"];
  const q = (value: string) => JSON.stringify(value);
  for (const nic of nics) {
    lines.push(`  ${q(nic.podInterface)}:`);
    lines.push(`    match:`, `      macaddress: ${q(nic.mac)}`);
    lines.push(`    dhcp4: ${nic.dhcp4}`, `    dhcp6: ${nic.dhcp6}`);
    if (nic.addresses.length > 0) {
      lines.push(`    addresses:`);
      for (const a of nic.addresses) lines.push(`      - ${q(`${a.address.text}/${a.prefix}`)}`);
    }
    if (nic.gateways.length > 0) {
      lines.push(`    routes:`);
      for (const g of nic.gateways) {
        lines.push(
          `      - to: ${q(DEFAULT_ROUTE[g.via.family])}`,
          `        via: ${q(g.via.text)}`,
        );
        if (g.onLink) lines.push(`        on-link: true`);
      }
    }
    if (nic.nameservers.length > 0 || nic.search.length > 0) {
      lines.push(`    nameservers:`);
      if (nic.nameservers.length > 0) {
        lines.push(`      addresses: [${nic.nameservers.map((n) => q(n.text)).join(", ")}]`);
      }
      if (nic.search.length > 0) lines.push(`      search: [${nic.search.map(q).join(", ")}]`);
    }
  }
  return lines.join("\n") + "\n";
}

/** OpenStack `network_data.json` (links, networks, services), as cloud-init and cloudbase-init read it. */
export function networkDataJson(nics: readonly GuestNic[]): Record<string, unknown> {
  const links: Record<string, unknown>[] = [];
  const networks: Record<string, unknown>[] = [];
  const dns = new Map<string, IpAddress>();
  for (const nic of nics) {
    links.push({ id: nic.podInterface, type: "phy", ethernet_mac_address: nic.mac });
    const add = (network: Record<string, unknown>) =>
      networks.push({ id: `network${networks.length}`, link: nic.podInterface, ...network });
    if (nic.dhcp4) add({ type: "ipv4_dhcp" });
    if (nic.dhcp6) add({ type: "ipv6_dhcp" });
    for (const { address, prefix } of nic.addresses) {
      const gateway = nic.gateways.find((g) => g.via.family === address.family);
      add({
        type: address.family === 4 ? "ipv4" : "ipv6",
        ip_address: address.text,
        netmask: netmask(address.family, prefix),
        routes: gateway === undefined ? [] : [{
          network: address.family === 4 ? "0.0.0.0" : "::",
          netmask: address.family === 4 ? "0.0.0.0" : "::",
          gateway: gateway.via.text,
        }],
      });
    }
    for (const server of nic.nameservers) dns.set(server.text, server);
  }
  return {
    links,
    networks,
    services: [...dns.keys()].map((address) => ({ type: "dns", address })),
  };
}

function netmask(family: 4 | 6, prefix: number): string {
  if (family === 4) {
    const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 0xff).join(".");
  }
  const groups: string[] = [];
  for (let group = 0; group < 8; group++) {
    const ones = Math.max(0, Math.min(16, prefix - group * 16));
    groups.push(((0xffff << (16 - ones)) & 0xffff).toString(16));
  }
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}
