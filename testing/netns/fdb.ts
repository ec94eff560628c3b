/**
 * Bridge forwarding (FDB) entries over rtnetlink, for scenarios that check what a bridge
 * learned (`bridge fdb` without iproute2). The sidecar itself never touches a bridge's FDB.
 * Each call uses its own NETLINK_ROUTE socket.
 */

import { ENOENT, isSyscallError } from "../../services/sidecar/kernel/libc.ts";
import { formatMac, parseMac } from "../../services/sidecar/kernel/ethernet.ts";
import {
  attr,
  attrTable,
  attrU32,
  closeNetlink,
  concat,
  dump,
  NETLINK_ROUTE,
  type NetlinkMessage,
  type NetlinkSocket,
  NLM_F_CREATE,
  NLM_F_REPLACE,
  openNetlink,
  request,
  u32,
} from "../../services/sidecar/kernel/netlink.ts";
import {
  AF_BRIDGE,
  NDA_LLADDR,
  NDA_MASTER,
  ndmsg,
  NTF_MASTER,
  NUD_NOARP,
  RTM_DELNEIGH,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from "../../services/sidecar/kernel/rtnetlink.ts";

function withSocket<T>(use: (sock: NetlinkSocket) => T): T {
  const sock = openNetlink(NETLINK_ROUTE);
  try {
    return use(sock);
  } finally {
    closeNetlink(sock);
  }
}
export interface FdbEntry {
  /** Bridge port index. */
  port: number;
  mac: string;
  /** Bridge index (when listing). */
  bridge?: number;
  state?: number;
}

/**
 * Adds or replaces a bridge forwarding entry (`bridge fdb replace MAC dev PORT master static`):
 * frames for `mac` go out through `port` only.
 */
export function replaceFdbEntry(entry: FdbEntry): void {
  withSocket((sock) =>
    request(sock, {
      type: RTM_NEWNEIGH,
      flags: NLM_F_CREATE | NLM_F_REPLACE,
      payload: concat(
        ndmsg({
          family: AF_BRIDGE,
          index: entry.port,
          state: entry.state ?? NUD_NOARP,
          flags: NTF_MASTER,
        }),
        attr(NDA_LLADDR, parseMac(entry.mac)),
      ),
    }, `set bridge forwarding entry ${entry.mac} on port ${entry.port}`)
  );
}

export function deleteFdbEntry(entry: FdbEntry): boolean {
  try {
    withSocket((sock) =>
      request(sock, {
        type: RTM_DELNEIGH,
        payload: concat(
          ndmsg({ family: AF_BRIDGE, index: entry.port, state: 0, flags: NTF_MASTER }),
          attr(NDA_LLADDR, parseMac(entry.mac)),
        ),
      }, `delete bridge forwarding entry ${entry.mac} on port ${entry.port}`)
    );
    return true;
  } catch (error) {
    if (isSyscallError(error, ENOENT)) return false;
    throw error;
  }
}

/** The port of `bridge` where `mac` was learned or set, or undefined when the bridge does not
 * know the address (`bridge fdb get MAC br BRIDGE`). */
export function fdbPortOf(bridge: number, mac: string): number | undefined {
  try {
    const replies = withSocket((sock) =>
      request(sock, {
        type: RTM_GETNEIGH,
        payload: concat(
          ndmsg({ family: AF_BRIDGE, index: 0, state: 0 }),
          attr(NDA_LLADDR, parseMac(mac)),
          attrU32(NDA_MASTER, bridge),
        ),
      }, `look up ${mac} in the forwarding table of bridge ${bridge}`)
    );
    const reply = replies.find((message) => message.type === RTM_NEWNEIGH);
    if (!reply) return undefined;
    return new DataView(reply.payload.buffer, reply.payload.byteOffset, 12).getInt32(4, true);
  } catch (error) {
    if (isSyscallError(error, ENOENT)) return undefined;
    throw error;
  }
}

/** The forwarding entries of one bridge (learned and static). */
export function listFdb(bridge: number): FdbEntry[] {
  return withSocket((sock) =>
    dump(sock, {
      type: RTM_GETNEIGH,
      payload: concat(
        ndmsg({ family: AF_BRIDGE, index: 0, state: 0 }),
        attrU32(NDA_MASTER, bridge),
      ),
    }, `list forwarding entries of bridge ${bridge}`)
  )
    .filter((message) => message.type === RTM_NEWNEIGH)
    .map((message: NetlinkMessage) => {
      const view = new DataView(
        message.payload.buffer,
        message.payload.byteOffset,
        message.payload.byteLength,
      );
      const attrs = attrTable(message.payload.subarray(12));
      const mac = attrs.get(NDA_LLADDR);
      const master = attrs.get(NDA_MASTER);
      return {
        port: view.getInt32(4, true),
        mac: mac ? formatMac(mac) : "",
        bridge: master ? u32(master) : 0,
        state: view.getUint16(8, true),
      };
    })
    .filter((entry) => entry.bridge === bridge);
}
