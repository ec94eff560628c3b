import { assert, assertEquals } from "../../../testing/assert.ts";
import {
  isLocalRule,
  isReplyRule,
  movePlan,
  REPLY_TABLE,
  replyRoute,
  type RuleStep,
} from "./bridge_intercept_routing.ts";
import { RT_SCOPE_LINK, RT_TABLE_LOCAL, RT_TABLE_MAIN, type Rule } from "../kernel/rtnetlink.ts";

const KERNEL = 2;
const defaults = (): Rule[] => [
  { priority: 0, table: RT_TABLE_LOCAL, protocol: KERNEL, action: 1 },
  { priority: 32766, table: RT_TABLE_MAIN, protocol: KERNEL, action: 1 },
  { priority: 32767, table: 253, protocol: KERNEL, action: 1 },
];

/**
 * How the kernel applies rule changes (net/core/fib_rules.c): a new rule goes after every
 * rule with a lower or EQUAL priority; an add identical to an existing rule (protocol
 * included) fails with EEXIST; a delete removes the first rule in list order that matches
 * the given priority, table and source.
 */
function applyLikeTheKernel(rules: Rule[], steps: RuleStep[]): Rule[] {
  const list = [...rules];
  const same = (a: Rule, b: Rule) =>
    a.priority === b.priority && a.table === b.table && a.from === b.from &&
    (a.protocol ?? 0) === (b.protocol ?? 0);
  for (const { op, rule } of steps) {
    if (op === "add") {
      if (list.some((existing) => same(existing, rule))) throw new Error("EEXIST");
      let at = 0;
      while (at < list.length && list[at].priority <= rule.priority) at++;
      list.splice(at, 0, { action: 1, ...rule });
    } else {
      const at = list.findIndex((existing) =>
        existing.priority === rule.priority && existing.table === rule.table &&
        (rule.from === undefined || existing.from === rule.from)
      );
      if (at < 0) throw new Error("ENOENT");
      list.splice(at, 1);
    }
  }
  return list;
}

function assertPlaced(rules: Rule[]): void {
  const ours = rules.findIndex(isReplyRule);
  const local = rules.findIndex(isLocalRule);
  assert(ours >= 0, "the reply rule exists");
  assert(ours < local, `the reply rule comes before local: ${JSON.stringify(rules)}`);
  assertEquals(rules.filter(isReplyRule).length, 1);
  assertEquals(rules.filter(isLocalRule).length, 1);
}

Deno.test("on the kernel's default rules, ours ends up first and local stays at priority 0", () => {
  const after = applyLikeTheKernel(defaults(), movePlan(defaults()));
  assertPlaced(after);
  assertEquals(after.map((rule) => [rule.priority, rule.table]), [
    [0, REPLY_TABLE],
    [0, RT_TABLE_LOCAL],
    [32766, RT_TABLE_MAIN],
    [32767, 253],
  ]);
  assertEquals(after[0].from, "169.254.169.254/32");
});

Deno.test("the steps never leave the namespace without a local rule", () => {
  const steps = movePlan(defaults());
  let rules = defaults();
  for (const step of steps) {
    rules = applyLikeTheKernel(rules, [step]);
    assert(rules.some(isLocalRule), `no local rule after ${JSON.stringify(step)}`);
  }
});

Deno.test("a second run changes nothing", () => {
  const placed = applyLikeTheKernel(defaults(), movePlan(defaults()));
  assertEquals(movePlan(placed), []);
});

Deno.test("after removal and a new install, the copy of local does not collide", () => {
  // What a removal leaves: the copied local rule (protocol unspecified) at priority 0.
  const placed = applyLikeTheKernel(defaults(), movePlan(defaults()));
  const removed = placed.filter((rule) => !isReplyRule(rule));
  assertEquals(removed[0].protocol ?? 0, 0);
  const again = applyLikeTheKernel(removed, movePlan(removed));
  assertPlaced(again);
});

Deno.test("a reply rule that ended up behind local is moved in front", () => {
  const rules = defaults();
  rules.splice(1, 0, { priority: 0, table: REPLY_TABLE, from: "169.254.169.254/32", action: 1 });
  assertPlaced(applyLikeTheKernel(rules, movePlan(rules)));
});

Deno.test("local moved elsewhere by someone else (e.g. priority 1000) is respected", () => {
  const rules: Rule[] = [
    { priority: 1000, table: RT_TABLE_LOCAL, action: 1 },
    ...defaults().slice(1),
  ];
  const after = applyLikeTheKernel(rules, movePlan(rules));
  assertPlaced(after);
  assertEquals(after.find(isLocalRule)?.priority, 1000);
});

Deno.test("rules that only look like local (with selectors) are not taken for it", () => {
  assert(!isLocalRule({ priority: 0, table: RT_TABLE_LOCAL, iif: "lo", action: 1 }));
  assert(!isLocalRule({ priority: 0, table: RT_TABLE_LOCAL, action: 6 }));
  assert(isLocalRule({ priority: 0, table: RT_TABLE_LOCAL, protocol: KERNEL }));
});

Deno.test("replies to a guest leave through the sidecar veth from the metadata address", () => {
  assertEquals(replyRoute("10.244.0.7", 12), {
    destination: "10.244.0.7/32",
    device: 12,
    source: "169.254.169.254",
    table: REPLY_TABLE,
    scope: RT_SCOPE_LINK,
  });
});
