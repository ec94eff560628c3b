/**
 * The way back to a bridge-binding guest. Its requests arrive on the sidecar veth from the
 * pod IP, and the pod IP is ALSO a local address of the pod (KubeVirt leaves it on the
 * placeholder interface that kept the pod interface's name). A plain reply would be looked
 * up in the `local` table, found local, and looped back inside the pod; the guest would
 * never get it (and the kernel drops the request as a martian before that, since its
 * source is local).
 *
 * So replies from 169.254.169.254 first consult a table of their own, holding one
 * `<guest address>/32 dev <sidecar veth>` route per bridge-binding guest:
 *
 *     0: from 169.254.169.254 lookup 169254     <- ours, before local
 *     0: from all lookup local
 *     32766: from all lookup main ...
 *
 * Anything else (masquerade guests at 10.0.2.2, link-local guests on Multus bridges) has
 * no route there and falls through to `local` and `main` unchanged. With this rule in
 * place the reverse-path check on incoming requests also resolves through the table, to
 * the veth they came in on, so it passes even with strict rp_filter and no accept_local.
 *
 * IPv6 has its own rules and `local` rule: replies from fd00:ec2::254 to a guest's IPv6 address
 * get the same treatment there (`from fd00:ec2::254 lookup 169254`, `<guest>/128` routes).
 *
 * Rules of equal priority are kept in insertion order and a new rule goes AFTER those with
 * the same priority, so ours, added at the priority of the `local` rule, lands behind it.
 * `movePlan` fixes that without a moment with no `local` rule: add ours, add a second
 * `local` rule (another `protocol`, so the kernel does not call it a duplicate), then delete
 * the first `local` rule. Removing ours later leaves `local` where it was.
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import {
  addRule,
  AF_INET,
  AF_INET6,
  deleteRoute,
  deleteRule,
  listRules,
  replaceRoute,
  type Route,
  RT_SCOPE_LINK,
  RT_TABLE_LOCAL,
  type Rule,
} from "../kernel/rtnetlink.ts";

/** The routing table for replies to bridge-binding guests (reads as 169.254). */
export const REPLY_TABLE = 169254;

const METADATA_SOURCE = `${METADATA_ADDRESS}/32`;
const METADATA_SOURCE_V6 = `${METADATA_ADDRESS_V6}/128`;
const FR_ACT_TO_TBL = 1;
const RTPROT_UNSPEC = 0;
const RTPROT_KERNEL = 2;
const RTPROT_BOOT = 3;

export function isReplyRule(rule: Rule): boolean {
  return rule.table === REPLY_TABLE &&
    (rule.from === METADATA_SOURCE || rule.from === METADATA_SOURCE_V6);
}

/** The `from all lookup local` rule (the kernel's own, or a copy of it). */
export function isLocalRule(rule: Rule): boolean {
  return rule.table === RT_TABLE_LOCAL && (rule.action ?? FR_ACT_TO_TBL) === FR_ACT_TO_TBL &&
    !rule.from && !rule.to && !rule.iif && !rule.oif && !rule.fwmark;
}

export type RuleStep = { op: "add" | "delete"; rule: Rule };

/**
 * The changes that put our rule before the first `local` rule, given the current rules of one
 * family (IPv4 unless `family` is AF_INET6) in kernel order. Empty when it already is.
 */
export function movePlan(rules: Rule[], family = AF_INET): RuleStep[] {
  const ours = rules.findIndex(isReplyRule);
  const local = rules.findIndex(isLocalRule);
  if (ours >= 0 && (local < 0 || ours < local)) return [];
  if (local < 0) return [{ op: "add", rule: replyRule(0, family) }];

  const priority = rules[local].priority;
  const steps: RuleStep[] = rules.filter(isReplyRule).map((rule) => ({ op: "delete", rule }));
  steps.push({ op: "add", rule: replyRule(priority, family) });
  const displaced = rules.filter((rule) => isLocalRule(rule) && rule.priority === priority);
  const taken = new Set(displaced.map((rule) => rule.protocol ?? RTPROT_UNSPEC));
  const protocol = [RTPROT_UNSPEC, RTPROT_KERNEL, RTPROT_BOOT].find((p) => !taken.has(p));
  steps.push({
    op: "add",
    rule: {
      priority,
      table: RT_TABLE_LOCAL,
      ...(protocol ? { protocol } : {}),
      ...(family === AF_INET ? {} : { family }),
    },
  });
  // Each delete removes the first `local` rule of that priority: the ones ahead of ours.
  for (let i = 0; i < displaced.length; i++) {
    steps.push({
      op: "delete",
      rule: { priority, table: RT_TABLE_LOCAL, ...(family === AF_INET ? {} : { family }) },
    });
  }
  return steps;
}

export function replyRule(priority: number, family = AF_INET): Rule {
  return {
    priority,
    table: REPLY_TABLE,
    from: family === AF_INET6 ? METADATA_SOURCE_V6 : METADATA_SOURCE,
  };
}

/**
 * Makes sure replies from 169.254.169.254 (from fd00:ec2::254 with AF_INET6) consult
 * REPLY_TABLE before `local`.
 */
export function ensureReplyRule(family = AF_INET): boolean {
  const steps = movePlan(listRules(family), family);
  for (const step of steps) {
    if (step.op === "delete") {
      deleteRule(step.rule);
    } else if (!addRule(step.rule) && isLocalRule(step.rule)) {
      // Without the copy, deleting the first `local` rule would leave the pod without one.
      throw new Error("could not add a copy of the local-table policy rule: it already exists");
    }
  }
  if (steps.length > 0) {
    const after = listRules(family);
    const ours = after.findIndex(isReplyRule);
    const local = after.findIndex(isLocalRule);
    if (ours < 0 || (local >= 0 && local < ours)) {
      throw new Error(
        `could not place the policy rule for ${METADATA_ADDRESS} before the local table`,
      );
    }
  }
  return steps.length > 0;
}

/**
 * Removes our rule(s) of one family; the `local` rule stays where it is. Returns whether any
 * existed.
 */
export function removeReplyRule(family = AF_INET): boolean {
  let removed = false;
  for (const rule of listRules(family).filter(isReplyRule)) {
    removed = deleteRule(rule) || removed;
  }
  return removed;
}

/** The route that sends replies for `guest` (IPv4 or IPv6) out of the sidecar veth `device`. */
export function replyRoute(guest: string, device: number): Route {
  const ipv6 = guest.includes(":");
  return {
    destination: ipv6 ? `${guest}/128` : `${guest}/32`,
    device,
    source: ipv6 ? METADATA_ADDRESS_V6 : METADATA_ADDRESS,
    table: REPLY_TABLE,
    scope: RT_SCOPE_LINK,
  };
}

export function addReplyRoute(route: Route): void {
  replaceRoute(route);
}

/** Deletes a reply route; false when it was already gone (e.g. with its interface). */
export function deleteReplyRoute(route: Route): boolean {
  return deleteRoute(route);
}
