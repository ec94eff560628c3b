import { assertEquals } from "../../../testing/assert.ts";
import {
  INTERCEPT_TABLE,
  interceptBatch,
  interceptRules,
  type InterceptTarget,
  removalBatch,
} from "../datapath/bridge_intercept_ruleset.ts";
import { batchShape } from "./nftables_state.ts";
import { NFPROTO_IPV4 } from "./nftables.ts";

const targets: InterceptTarget[] = [
  {
    bridge: "k6t-eth0",
    bridgeMac: "02:00:00:00:00:00",
    vmPorts: ["tap0"],
    sidecarPort: "imdb-eth0",
    sidecarMac: "0e:1d:5a:00:00:01",
  },
  {
    bridge: "k6t-net1",
    bridgeMac: "02:00:00:00:00:01",
    vmPorts: ["tap1", "tap0"],
    sidecarPort: "imdb-net1",
    sidecarMac: "0e:1d:5a:00:00:02",
  },
];

Deno.test("a batch's shape counts what the table holds after it: chains, rules, set elements", () => {
  assertEquals(batchShape(interceptBatch(targets), INTERCEPT_TABLE), {
    chains: 4,
    rules: interceptRules(targets).length,
    // sidecar_ports: imdb-eth0, imdb-net1; vm_ports: tap0, tap1 (each once).
    setElements: 4,
  });
});

Deno.test("a batch that deletes the table leaves nothing, and other tables do not count", () => {
  assertEquals(batchShape(removalBatch(), INTERCEPT_TABLE), {
    chains: 0,
    rules: 0,
    setElements: 0,
  });
  assertEquals(
    batchShape(interceptBatch(targets), { ...INTERCEPT_TABLE, table: "another" }),
    { chains: 0, rules: 0, setElements: 0 },
  );
  assertEquals(
    batchShape(interceptBatch(targets), { family: NFPROTO_IPV4, table: INTERCEPT_TABLE.table }),
    { chains: 0, rules: 0, setElements: 0 },
    "same name, other family",
  );
});
