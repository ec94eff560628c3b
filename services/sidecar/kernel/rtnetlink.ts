/**
 * rtnetlink operations on the current network namespace: links (list, veth
 * pairs, master/up/MAC, per-device IPv4 settings), addresses, routes, policy
 * rules and neighbours, and link-change events.
 *
 * Every function is synchronous and throws a SyscallError (libc.ts) naming
 * what it tried, e.g. `add address 169.254.169.254/32 to lo failed: File
 * exists (errno 17)`. Calls share one NETLINK_ROUTE socket, opened on first
 * use; `closeRoutingSocket()` releases it.
 */

import { EEXIST, ENOENT, ESRCH, isSyscallError } from "./libc.ts";
import { formatMac, parseMac } from "./ethernet.ts";
import { formatIpv4, parseCidr, parseIpv4 } from "./ipv4.ts";
import { formatIpv6, parseIpv6, parseIpv6Cidr } from "./ipv6.ts";
import {
  attr,
  attrStr,
  attrTable,
  attrU32,
  attrU8,
  closeNetlink,
  concat,
  dump,
  type DumpOptions,
  nested,
  NETLINK_ROUTE,
  type NetlinkMessage,
  type NetlinkSocket,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  openNetlink,
  request,
  str,
  u32,
  u8,
} from "./netlink.ts";

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;
export const IFF_NOARP = 0x80;
export const IFF_LOWER_UP = 0x10000;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_AF_SPEC = 26;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_INET_CONF = 1;
const IFLA_INET6_ADDR_GEN_MODE = 8;
const IN6_ADDR_GEN_MODE_NONE = 1;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;

const FRA_DST = 1;
const FRA_SRC = 2;
const FRA_IIFNAME = 3;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FRA_OIFNAME = 17;
const FRA_PROTOCOL = 21;
export const RTM_GETRULE = 34;
const FR_ACT_TO_TBL = 1;

export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_MASTER = 9;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTPROT_STATIC = 4;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

/** rtnetlink multicast group for link changes. */
export const RTNLGRP_LINK = 1;

/** IPv4 per-device settings (IPV4_DEVCONF_* in <linux/ip.h>); values are attribute types. */
export const IPV4_DEVCONF = {
  forwarding: 1,
  proxy_arp: 3,
  accept_redirects: 4,
  send_redirects: 6,
  rp_filter: 8,
  log_martians: 11,
  arp_filter: 13,
  arp_announce: 18,
  arp_ignore: 19,
  arp_accept: 21,
  arp_notify: 22,
  accept_local: 23,
  route_localnet: 26,
} as const;
export type Ipv4Setting = keyof typeof IPV4_DEVCONF;

const OPERSTATES = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"];

// ---- the shared socket --------------------------------------------------------------------

let shared: NetlinkSocket | undefined;

function sock(): NetlinkSocket {
  shared ??= openNetlink(NETLINK_ROUTE);
  return shared;
}

export function closeRoutingSocket(): void {
  if (shared) closeNetlink(shared);
  shared = undefined;
}

// ---- fixed headers ------------------------------------------------------------------------

/** ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32. */
export function ifinfomsg(
  fields: { family?: number; index?: number; flags?: number; change?: number } = {},
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, fields.family ?? AF_UNSPEC);
  view.setInt32(4, fields.index ?? 0, true);
  view.setUint32(8, fields.flags ?? 0, true);
  view.setUint32(12, fields.change ?? 0, true);
  return bytes;
}

/** ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32. */
export function ifaddrmsg(
  fields: { family: number; prefix: number; scope: number; index: number },
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, fields.family);
  view.setUint8(1, fields.prefix);
  view.setUint8(3, fields.scope);
  view.setUint32(4, fields.index, true);
  return bytes;
}

/** rtmsg and fib_rule_hdr share this 12-byte layout: family, dst_len, src_len, tos, table,
 * protocol|res1, scope|res2, type|action, flags u32. */
export function rtmsg(fields: {
  family: number;
  dstLen?: number;
  srcLen?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, fields.family);
  view.setUint8(1, fields.dstLen ?? 0);
  view.setUint8(2, fields.srcLen ?? 0);
  // Tables above 255 travel in RTA_TABLE/FRA_TABLE only (RT_TABLE_UNSPEC here), as iproute2 does.
  const table = fields.table ?? 0;
  view.setUint8(4, table < 256 ? table : 0);
  view.setUint8(5, fields.protocol ?? 0);
  view.setUint8(6, fields.scope ?? 0);
  view.setUint8(7, fields.type ?? 0);
  view.setUint32(8, fields.flags ?? 0, true);
  return bytes;
}

/** ndmsg: family u8, pad u8, pad u16, ifindex i32, state u16, flags u8, type u8. */
export function ndmsg(
  fields: { family: number; index: number; state: number; flags?: number },
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, fields.family);
  view.setInt32(4, fields.index, true);
  view.setUint16(8, fields.state, true);
  view.setUint8(10, fields.flags ?? 0);
  return bytes;
}

// ---- links --------------------------------------------------------------------------------

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: "bridge", "veth", … ("" for loopback and physical devices). */
  kind: string;
  /** Index of the bridge this link is a port of, 0 when none. */
  master: number;
  mac: string;
  /** IFF_* flags. */
  flags: number;
  up: boolean;
  operstate: string;
  mtu: number;
  /** The device's IPv4 settings by IPV4_DEVCONF number (index 0 unused); empty without IPv4. */
  ipv4Conf: number[];
}

/** Reads IFLA_AF_SPEC → AF_INET → IFLA_INET_CONF (an array of u32, setting N at index N-1). */
export function parseIpv4Conf(afSpec: Uint8Array | undefined): number[] {
  const inet = afSpec ? attrTable(afSpec).get(AF_INET) : undefined;
  const conf = inet ? attrTable(inet).get(IFLA_INET_CONF) : undefined;
  if (!conf) return [];
  const view = new DataView(conf.buffer, conf.byteOffset, conf.byteLength);
  const values = [0];
  for (let offset = 0; offset + 4 <= conf.length; offset += 4) {
    values.push(view.getUint32(offset, true));
  }
  return values;
}

/** Decodes an RTM_NEWLINK message (dump reply or event). */
export function parseLink(message: NetlinkMessage): Link {
  const view = new DataView(
    message.payload.buffer,
    message.payload.byteOffset,
    message.payload.byteLength,
  );
  const index = view.getInt32(4, true);
  const flags = view.getUint32(8, true);
  const attrs = attrTable(message.payload.subarray(16));
  const linkinfo = attrs.get(IFLA_LINKINFO);
  const kind = linkinfo ? attrTable(linkinfo).get(IFLA_INFO_KIND) : undefined;
  const address = attrs.get(IFLA_ADDRESS);
  const operstate = attrs.get(IFLA_OPERSTATE);
  const mtu = attrs.get(IFLA_MTU);
  const master = attrs.get(IFLA_MASTER);
  return {
    index,
    name: str(attrs.get(IFLA_IFNAME) ?? new Uint8Array(0)),
    kind: kind ? str(kind) : "",
    master: master ? u32(master) : 0,
    mac: address && address.length === 6 ? formatMac(address) : "",
    flags,
    up: (flags & IFF_UP) !== 0,
    operstate: operstate ? OPERSTATES[u8(operstate)] ?? "unknown" : "unknown",
    mtu: mtu ? u32(mtu) : 0,
    ipv4Conf: parseIpv4Conf(attrs.get(IFLA_AF_SPEC)),
  };
}

/** Every interface; `options.onRetried` hears of dumps read again (see netlink.dump). */
export function listLinks(options: DumpOptions = {}): Link[] {
  return dump(
    sock(),
    { type: RTM_GETLINK, payload: ifinfomsg() },
    "list network interfaces",
    options,
  )
    .filter((message) => message.type === RTM_NEWLINK)
    .map(parseLink);
}

export function findLink(name: string): Link | undefined {
  return listLinks().find((link) => link.name === name);
}

/** Creates a veth pair `name` ↔ `peer` (both down, kernel-chosen MACs). */
export function createVethPair(name: string, peer: string): void {
  request(sock(), {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: concat(
      ifinfomsg(),
      attrStr(IFLA_IFNAME, name),
      nested(IFLA_LINKINFO, [
        attrStr(IFLA_INFO_KIND, "veth"),
        nested(IFLA_INFO_DATA, [
          attr(VETH_INFO_PEER, concat(ifinfomsg(), attrStr(IFLA_IFNAME, peer))),
        ]),
      ]),
    ),
  }, `create veth pair ${name}/${peer}`);
}

export function deleteLink(index: number, what = `interface ${index}`): void {
  request(sock(), { type: RTM_DELLINK, payload: ifinfomsg({ index }) }, `delete ${what}`);
}

export interface LinkChange {
  up?: boolean;
  noarp?: boolean;
  /** Bridge index to enslave to; 0 releases. */
  master?: number;
  mac?: string;
  mtu?: number;
}

export function setLink(index: number, change: LinkChange, what = `interface ${index}`): void {
  let flags = 0;
  let mask = 0;
  if (change.up !== undefined) {
    mask |= IFF_UP;
    if (change.up) flags |= IFF_UP;
  }
  if (change.noarp !== undefined) {
    mask |= IFF_NOARP;
    if (change.noarp) flags |= IFF_NOARP;
  }
  const attrs: Uint8Array[] = [];
  if (change.master !== undefined) attrs.push(attrU32(IFLA_MASTER, change.master));
  if (change.mac !== undefined) attrs.push(attr(IFLA_ADDRESS, parseMac(change.mac)));
  if (change.mtu !== undefined) attrs.push(attrU32(IFLA_MTU, change.mtu));
  request(sock(), {
    type: RTM_NEWLINK,
    payload: concat(ifinfomsg({ index, flags, change: mask }), ...attrs),
  }, `configure ${what}`);
}

/** The IFLA_AF_SPEC → AF_INET → IFLA_INET_CONF attribute setting `settings`. */
export function ipv4ConfAttr(settings: Partial<Record<Ipv4Setting, number>>): Uint8Array {
  const conf = Object.entries(settings).map(([name, value]) =>
    attrU32(IPV4_DEVCONF[name as Ipv4Setting], value as number)
  );
  return nested(IFLA_AF_SPEC, [nested(AF_INET, [nested(IFLA_INET_CONF, conf)])]);
}

/** Sets per-device IPv4 settings (what /proc/sys/net/ipv4/conf/DEV/* holds), over rtnetlink. */
export function setIpv4Conf(
  index: number,
  settings: Partial<Record<Ipv4Setting, number>>,
  what = `interface ${index}`,
): void {
  request(sock(), {
    type: RTM_NEWLINK,
    payload: concat(ifinfomsg({ index }), ipv4ConfAttr(settings)),
  }, `set IPv4 settings ${JSON.stringify(settings)} on ${what}`);
}

/** Stops the kernel from giving the device an IPv6 link-local address (no ND/RS traffic). */
export function disableIpv6AddressGeneration(index: number, what = `interface ${index}`): void {
  request(sock(), {
    type: RTM_NEWLINK,
    payload: concat(
      ifinfomsg({ index }),
      nested(IFLA_AF_SPEC, [
        nested(AF_INET6, [attrU8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE)]),
      ]),
    ),
  }, `turn off IPv6 link-local address on ${what}`);
}

// ---- addresses ----------------------------------------------------------------------------

export interface Ipv4Address {
  index: number;
  address: string;
  prefix: number;
}

export function listIpv4Addresses(options: DumpOptions = {}): Ipv4Address[] {
  return listAddresses(AF_INET, options);
}

/** The addresses of one family on every interface (IFA_LOCAL where there is one). */
function listAddresses(family: number, options: DumpOptions): Ipv4Address[] {
  const format = family === AF_INET6 ? formatIpv6 : formatIpv4;
  return dump(
    sock(),
    {
      type: RTM_GETADDR,
      payload: ifaddrmsg({ family, prefix: 0, scope: 0, index: 0 }),
    },
    `list ${family === AF_INET6 ? "IPv6" : "IPv4"} addresses`,
    options,
  )
    .filter((message) => message.type === RTM_NEWADDR)
    .map((message) => {
      const view = new DataView(
        message.payload.buffer,
        message.payload.byteOffset,
        message.payload.byteLength,
      );
      const attrs = attrTable(message.payload.subarray(8));
      const local = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
      return {
        index: view.getUint32(4, true),
        prefix: view.getUint8(1),
        address: local ? format(local) : "",
      };
    });
}

/** RTM_NEWADDR with `payload`; false when the device already had the address. */
function newAddress(payload: Uint8Array, description: string): boolean {
  try {
    request(sock(), { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, payload }, description);
    return true;
  } catch (error) {
    if (isSyscallError(error, EEXIST)) return false;
    throw error;
  }
}

/**
 * Adds an IPv4 address ("169.254.169.254/32") to a device. Returns false when the device already
 * had it (not an error: set-up is idempotent).
 */
export function addIpv4Address(
  index: number,
  cidr: string,
  options: { scope?: number; what?: string } = {},
): boolean {
  const { address, prefix } = parseCidr(cidr);
  return newAddress(
    concat(
      ifaddrmsg({ family: AF_INET, prefix, scope: options.scope ?? RT_SCOPE_UNIVERSE, index }),
      attr(IFA_LOCAL, address),
      attr(IFA_ADDRESS, address),
    ),
    `add address ${cidr} to ${options.what ?? `interface ${index}`}`,
  );
}

/**
 * Adds an IPv6 address ("fd00:ec2::254/128") to a device, with no duplicate address detection
 * (the address is the sidecar's alone). Returns false when the device already had it. Throws
 * when IPv6 is disabled in the namespace or on the device.
 */
export function addIpv6Address(index: number, cidr: string, what = `interface ${index}`): boolean {
  const { address, prefix } = parseIpv6Cidr(cidr);
  return newAddress(
    concat(
      ifaddrmsg({ family: AF_INET6, prefix, scope: RT_SCOPE_UNIVERSE, index }),
      attr(IFA_ADDRESS, address),
      attrU32(IFA_FLAGS, IFA_F_NODAD),
    ),
    `add address ${cidr} to ${what}`,
  );
}

export function deleteIpv4Address(index: number, cidr: string, what = `interface ${index}`): void {
  const { address, prefix } = parseCidr(cidr);
  request(sock(), {
    type: RTM_DELADDR,
    payload: concat(
      ifaddrmsg({ family: AF_INET, prefix, scope: 0, index }),
      attr(IFA_LOCAL, address),
    ),
  }, `remove address ${cidr} from ${what}`);
}

// ---- either family ------------------------------------------------------------------------

/** "fd00:ec2::254/128" or "169.254.169.254/32" (a bare address is a host prefix). */
function anyCidr(text: string): { family: number; address: Uint8Array; prefix: number } {
  return text.includes(":")
    ? { family: AF_INET6, ...parseIpv6Cidr(text) }
    : { family: AF_INET, ...parseCidr(text) };
}

function anyAddress(text: string): Uint8Array {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

function formatAny(family: number, bytes: Uint8Array): string {
  return family === AF_INET6 ? formatIpv6(bytes) : formatIpv4(bytes);
}

/** The IPv6 addresses of every interface (link-local ones included), like listIpv4Addresses. */
export function listIpv6Addresses(options: DumpOptions = {}): Ipv4Address[] {
  return listAddresses(AF_INET6, options);
}

// ---- routes -------------------------------------------------------------------------------

export interface Route {
  /** "169.254.100.100/32", "0.0.0.0/0", "fd00:10:244::7/128": the family follows it. */
  destination: string;
  /** Outgoing device index. */
  device?: number;
  gateway?: string;
  /** Preferred source address. */
  source?: string;
  table?: number;
  /** RT_SCOPE_*; defaults to link scope without a gateway, universe with one. */
  scope?: number;
  /** RTN_*; defaults to unicast. */
  type?: number;
  metric?: number;
}

function routeMessage(route: Route, forDelete: boolean): Uint8Array {
  const { family, address, prefix } = anyCidr(route.destination);
  const table = route.table ?? RT_TABLE_MAIN;
  const attrs: Uint8Array[] = [attrU32(RTA_TABLE, table)];
  if (prefix > 0) attrs.push(attr(RTA_DST, address));
  if (route.device !== undefined) attrs.push(attrU32(RTA_OIF, route.device));
  if (route.gateway) attrs.push(attr(RTA_GATEWAY, anyAddress(route.gateway)));
  if (route.source) attrs.push(attr(RTA_PREFSRC, anyAddress(route.source)));
  if (route.metric !== undefined) attrs.push(attrU32(RTA_PRIORITY, route.metric));
  return concat(
    rtmsg({
      family,
      dstLen: prefix,
      table,
      protocol: forDelete ? 0 : RTPROT_STATIC,
      // RT_SCOPE_NOWHERE on delete: match the route whatever its scope.
      scope: forDelete ? RT_SCOPE_NOWHERE : route.scope ??
        (route.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK),
      type: forDelete ? 0 : route.type ?? RTN_UNICAST,
    }),
    ...attrs,
  );
}

function describeRoute(route: Route): string {
  return `route to ${route.destination}` + (route.device ? ` via interface ${route.device}` : "") +
    (route.table && route.table !== RT_TABLE_MAIN ? ` in table ${route.table}` : "");
}

/**
 * The routes of every table (destination, device, source, table, scope, type): IPv4 unless
 * `family` is AF_INET6.
 */
export function listRoutes(family = AF_INET): Route[] {
  return dump(sock(), { type: RTM_GETROUTE, payload: rtmsg({ family }) }, "list routes")
    .filter((message) => message.type === RTM_NEWROUTE)
    .map((message) => {
      const header = message.payload;
      const attrs = attrTable(header.subarray(12));
      const dst = attrs.get(RTA_DST);
      const none = family === AF_INET6 ? "::" : "0.0.0.0";
      const route: Route = {
        destination: `${dst ? formatAny(family, dst) : none}/${header[1]}`,
        table: attrs.has(RTA_TABLE) ? u32(attrs.get(RTA_TABLE)!) : header[4],
        scope: header[6],
        type: header[7],
      };
      const oif = attrs.get(RTA_OIF);
      if (oif) route.device = u32(oif);
      const gateway = attrs.get(RTA_GATEWAY);
      if (gateway) route.gateway = formatAny(family, gateway);
      const source = attrs.get(RTA_PREFSRC);
      if (source) route.source = formatAny(family, source);
      return route;
    });
}

/** IPv4 neighbour (ARP) entries of one device: address → MAC. */
export function listNeighbours(index: number): Map<string, string> {
  return new Map(
    listAllNeighbours(index)
      .filter((entry) => entry.index === index)
      .map((entry) => [entry.address, entry.mac]),
  );
}

/**
 * IPv4 neighbour (ARP) entries that carry a link-layer address, of every device (or, as a
 * hint to the kernel, of device `index`; callers filter).
 */
export function listAllNeighbours(index = 0): Required<Neighbour>[] {
  const entries: Required<Neighbour>[] = [];
  const replies = dump(sock(), {
    type: RTM_GETNEIGH,
    payload: ndmsg({ family: AF_INET, index, state: 0 }),
  }, index ? `list neighbours of interface ${index}` : "list neighbours");
  for (const message of replies) {
    if (message.type !== RTM_NEWNEIGH) continue;
    const view = new DataView(message.payload.buffer, message.payload.byteOffset, 12);
    const attrs = attrTable(message.payload.subarray(12));
    const dst = attrs.get(NDA_DST);
    const mac = attrs.get(NDA_LLADDR);
    if (!dst || mac?.length !== 6) continue;
    entries.push({
      index: view.getInt32(4, true),
      address: formatIpv4(dst),
      mac: formatMac(mac),
      state: view.getUint16(8, true),
    });
  }
  return entries;
}

/** Adds or replaces a route. */
export function replaceRoute(route: Route): void {
  request(sock(), {
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    payload: routeMessage(route, false),
  }, `set ${describeRoute(route)}`);
}

/** Deletes a route; returns false when there was none. */
export function deleteRoute(route: Route): boolean {
  try {
    request(
      sock(),
      { type: RTM_DELROUTE, payload: routeMessage(route, true) },
      `delete ${describeRoute(route)}`,
    );
    return true;
  } catch (error) {
    if (isSyscallError(error, ESRCH) || isSyscallError(error, ENOENT)) return false;
    throw error;
  }
}

// ---- policy rules -------------------------------------------------------------------------

export interface Rule {
  priority: number;
  table: number;
  /** Who made the rule (RTPROT_*; e.g. 2 = kernel for the default rules). */
  protocol?: number;
  /** FR_ACT_*; 1 (look up `table`) when not given. */
  action?: number;
  /** Source prefix, "10.244.1.5/32" (IPv6 prefixes make an IPv6 rule). */
  from?: string;
  /** Destination prefix. */
  to?: string;
  /** Incoming interface name ("lo" matches locally generated packets). */
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  /** AF_INET6 for an IPv6 rule without prefixes; otherwise taken from them (IPv4 by default). */
  family?: number;
}

function ruleFamily(rule: Rule): number {
  const prefix = rule.from ?? rule.to;
  return prefix ? anyCidr(prefix).family : rule.family ?? AF_INET;
}

function ruleMessage(rule: Rule): Uint8Array {
  const attrs: Uint8Array[] = [
    attrU32(FRA_PRIORITY, rule.priority),
    attrU32(FRA_TABLE, rule.table),
  ];
  let dstLen = 0;
  let srcLen = 0;
  if (rule.from) {
    const { address, prefix } = anyCidr(rule.from);
    srcLen = prefix;
    attrs.push(attr(FRA_SRC, address));
  }
  if (rule.to) {
    const { address, prefix } = anyCidr(rule.to);
    dstLen = prefix;
    attrs.push(attr(FRA_DST, address));
  }
  if (rule.iif) attrs.push(attrStr(FRA_IIFNAME, rule.iif));
  if (rule.oif) attrs.push(attrStr(FRA_OIFNAME, rule.oif));
  if (rule.fwmark !== undefined) attrs.push(attrU32(FRA_FWMARK, rule.fwmark));
  if (rule.fwmask !== undefined) attrs.push(attrU32(FRA_FWMASK, rule.fwmask));
  if (rule.protocol !== undefined) attrs.push(attrU8(FRA_PROTOCOL, rule.protocol));
  return concat(
    rtmsg({
      family: ruleFamily(rule),
      dstLen,
      srcLen,
      table: rule.table,
      type: rule.action ?? FR_ACT_TO_TBL,
    }),
    ...attrs,
  );
}

function describeRule(rule: Rule): string {
  return `policy rule ${rule.priority} (table ${rule.table}` +
    (rule.from ? `, from ${rule.from}` : "") + (rule.to ? `, to ${rule.to}` : "") +
    (rule.iif ? `, iif ${rule.iif}` : "") +
    (rule.fwmark !== undefined ? `, fwmark ${rule.fwmark}` : "") +
    ")";
}

/** The policy rules of one family (IPv4 by default), in the kernel's order. */
export function listRules(family = AF_INET): Rule[] {
  return dump(
    sock(),
    { type: RTM_GETRULE, payload: rtmsg({ family }) },
    "list policy rules",
  )
    .filter((message) => message.type === RTM_NEWRULE)
    .map((message) => {
      const header = message.payload;
      const attrs = attrTable(header.subarray(12));
      const rule: Rule = {
        priority: attrs.has(FRA_PRIORITY) ? u32(attrs.get(FRA_PRIORITY)!) : 0,
        table: attrs.has(FRA_TABLE) ? u32(attrs.get(FRA_TABLE)!) : header[4],
        action: header[7],
      };
      if (family !== AF_INET) rule.family = family;
      const src = attrs.get(FRA_SRC);
      if (src) rule.from = `${formatAny(family, src)}/${header[2]}`;
      const dst = attrs.get(FRA_DST);
      if (dst) rule.to = `${formatAny(family, dst)}/${header[1]}`;
      const iif = attrs.get(FRA_IIFNAME);
      if (iif) rule.iif = str(iif);
      const oif = attrs.get(FRA_OIFNAME);
      if (oif) rule.oif = str(oif);
      const fwmark = attrs.get(FRA_FWMARK);
      if (fwmark) rule.fwmark = u32(fwmark);
      const fwmask = attrs.get(FRA_FWMASK);
      if (fwmask) rule.fwmask = u32(fwmask);
      const protocol = attrs.get(FRA_PROTOCOL);
      if (protocol) rule.protocol = u8(protocol);
      return rule;
    });
}

/** Adds a policy rule; returns false when an identical rule already exists. */
export function addRule(rule: Rule): boolean {
  try {
    request(sock(), {
      type: RTM_NEWRULE,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      payload: ruleMessage(rule),
    }, `add ${describeRule(rule)}`);
    return true;
  } catch (error) {
    if (isSyscallError(error, EEXIST)) return false;
    throw error;
  }
}

/** Deletes a policy rule; returns false when there was none. */
export function deleteRule(rule: Rule): boolean {
  try {
    request(
      sock(),
      { type: RTM_DELRULE, payload: ruleMessage(rule) },
      `delete ${describeRule(rule)}`,
    );
    return true;
  } catch (error) {
    if (isSyscallError(error, ENOENT) || isSyscallError(error, ESRCH)) return false;
    throw error;
  }
}

// ---- neighbours ------------------------------------------------------------------------

export interface Neighbour {
  index: number;
  address: string;
  mac: string;
  /** NUD_*; defaults to NUD_REACHABLE (the kernel re-checks it later like a learned entry). */
  state?: number;
}

/** Adds or replaces an IPv4 neighbour (ARP) entry. */
export function replaceNeighbour(neighbour: Neighbour): void {
  request(sock(), {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    payload: concat(
      ndmsg({ family: AF_INET, index: neighbour.index, state: neighbour.state ?? NUD_REACHABLE }),
      attr(NDA_DST, parseIpv4(neighbour.address)),
      attr(NDA_LLADDR, parseMac(neighbour.mac)),
    ),
  }, `set neighbour ${neighbour.address} is at ${neighbour.mac} on interface ${neighbour.index}`);
}

export function deleteNeighbour(index: number, address: string): boolean {
  try {
    request(sock(), {
      type: RTM_DELNEIGH,
      payload: concat(
        ndmsg({ family: AF_INET, index, state: 0 }),
        attr(NDA_DST, parseIpv4(address)),
      ),
    }, `delete neighbour ${address} on interface ${index}`);
    return true;
  } catch (error) {
    if (isSyscallError(error, ENOENT)) return false;
    throw error;
  }
}

// ---- events -------------------------------------------------------------------------------

/** rtnetlink multicast group for IPv4 address changes. */
export const RTNLGRP_IPV4_IFADDR = 5;

/**
 * A socket that receives link changes (RTM_NEWLINK/RTM_DELLINK) and IPv4 address changes
 * (RTM_NEWADDR/RTM_DELADDR); read with netlink.receiveEvents.
 */
export function openLinkEvents(): NetlinkSocket {
  return openNetlink(NETLINK_ROUTE, { groups: [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR] });
}
