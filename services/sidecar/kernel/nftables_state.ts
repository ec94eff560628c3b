/**
 * Reading back what nftables holds, cheaply, so a table is only rewritten when it has to be:
 * - `rulesetGeneration`: the kernel's ruleset generation, bumped by every nftables commit in
 *   the network namespace (anyone's); unchanged means nothing at all was changed.
 * - `readTableShape`: how many base chains, rules and set elements a table has now (undefined
 *   when the table does not exist) — enough to notice a table deleted, flushed or trimmed;
 *   `batchShape`: the same counts for what a batch would leave, to compare with.
 */

import {
  attrStr,
  attrTable,
  type BatchMessage,
  concat,
  dump,
  type NetlinkSocket,
  parseAttrs,
  request,
  str,
  u32be,
} from "./netlink.ts";
import {
  nfgenmsg,
  NFNL_SUBSYS_NFTABLES,
  NFT_MSG_DELTABLE,
  NFT_MSG_NEWCHAIN,
  NFT_MSG_NEWRULE,
  NFT_MSG_NEWSETELEM,
  type TableRef,
} from "./nftables.ts";

const NFT_MSG_GETCHAIN = 4;
const NFT_MSG_GETRULE = 7;
const NFT_MSG_GETSET = 10;
const NFT_MSG_GETSETELEM = 13;
const NFT_MSG_NEWGEN = 15;
const NFT_MSG_GETGEN = 16;
const NFTA_GEN_ID = 1;
/** NFTA_CHAIN_TABLE, NFTA_RULE_TABLE and NFTA_SET_TABLE are all attribute 1. */
const NFTA_OBJECT_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;

/** What a table holds, counted. */
export interface TableShape {
  chains: number;
  rules: number;
  setElements: number;
}

function nftType(message: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | message;
}

/** The ruleset generation id (NFT_MSG_GETGEN). */
export function rulesetGeneration(sock: NetlinkSocket): number {
  const replies = request(
    sock,
    { type: nftType(NFT_MSG_GETGEN), payload: nfgenmsg(0) },
    "read the nftables ruleset generation",
  );
  const reply = replies.find((message) => message.type === nftType(NFT_MSG_NEWGEN));
  const id = reply && attrTable(reply.payload.subarray(4)).get(NFTA_GEN_ID);
  if (!id) throw new Error("read the nftables ruleset generation: no generation in the reply");
  return u32be(id);
}

/** Dump replies of `message` (a GET* type) whose table attribute is `ref.table`. */
function dumpInTable(sock: NetlinkSocket, ref: TableRef, message: number, what: string) {
  return dump(
    sock,
    {
      type: nftType(message),
      payload: concat(nfgenmsg(ref.family), attrStr(NFTA_OBJECT_TABLE, ref.table)),
    },
    what,
  ).filter((reply) => {
    const table = attrTable(reply.payload.subarray(4)).get(NFTA_OBJECT_TABLE);
    return table !== undefined && str(table) === ref.table;
  });
}

/** Chains, rules and set elements of table `ref` now; undefined when it does not exist. */
export function readTableShape(sock: NetlinkSocket, ref: TableRef): TableShape | undefined {
  const what = `read nftables table ${ref.table}`;
  const chains = dumpInTable(sock, ref, NFT_MSG_GETCHAIN, what).length;
  // Every table this code writes has base chains: none means there is no such table.
  if (chains === 0) return undefined;
  const rules = dumpInTable(sock, ref, NFT_MSG_GETRULE, what).length;
  let setElements = 0;
  for (const set of dumpInTable(sock, ref, NFT_MSG_GETSET, what)) {
    const name = attrTable(set.payload.subarray(4)).get(NFTA_SET_NAME);
    if (!name) continue;
    const replies = dump(sock, {
      type: nftType(NFT_MSG_GETSETELEM),
      payload: concat(
        nfgenmsg(ref.family),
        attrStr(NFTA_SET_ELEM_LIST_TABLE, ref.table),
        attrStr(NFTA_SET_ELEM_LIST_SET, str(name)),
      ),
    }, what);
    for (const reply of replies) {
      const list = attrTable(reply.payload.subarray(4)).get(NFTA_SET_ELEM_LIST_ELEMENTS);
      if (list) setElements += parseAttrs(list).length;
    }
  }
  return { chains, rules, setElements };
}

/** What table `ref` holds once `messages` (an nftables batch) is committed. */
export function batchShape(messages: BatchMessage[], ref: TableRef): TableShape {
  let shape: TableShape = { chains: 0, rules: 0, setElements: 0 };
  for (const message of messages) {
    if (message.type >> 8 !== NFNL_SUBSYS_NFTABLES || message.payload[0] !== ref.family) continue;
    const attrs = attrTable(message.payload.subarray(4));
    const table = attrs.get(NFTA_OBJECT_TABLE);
    if (!table || str(table) !== ref.table) continue;
    switch (message.type & 0xff) {
      case NFT_MSG_DELTABLE:
        shape = { chains: 0, rules: 0, setElements: 0 };
        break;
      case NFT_MSG_NEWCHAIN:
        shape.chains++;
        break;
      case NFT_MSG_NEWRULE:
        shape.rules++;
        break;
      case NFT_MSG_NEWSETELEM: {
        const list = attrs.get(NFTA_SET_ELEM_LIST_ELEMENTS);
        if (list) shape.setElements += parseAttrs(list).length;
        break;
      }
    }
  }
  return shape;
}
