/**
 * The bridge interception and the ingress guard, called in a fresh process inside a pod's
 * namespace (they change that namespace's nftables and routing, so they must run there):
 *
 *   ip netns exec <pod> deno run -A testing/netns/intercept_script.ts '<InterceptRequest JSON>'
 *
 * prints the request's result as one JSON line. Tests and the benchmark call `runIntercept`.
 */

import {
  createBridgeIntercept,
  type InterceptContext,
  type InterceptStatus,
} from "../../services/sidecar/datapath/bridge_intercept.ts";
import { interceptBatch } from "../../services/sidecar/datapath/bridge_intercept_ruleset.ts";
import { installIngressGuard } from "../../services/sidecar/datapath/ingress_guard.ts";
import {
  closeNetlink,
  NETLINK_NETFILTER,
  openNetlink,
} from "../../services/sidecar/kernel/netlink.ts";
import { commit } from "../../services/sidecar/kernel/nftables.ts";
import { rulesetGeneration } from "../../services/sidecar/kernel/nftables_state.ts";
import { findLink, type Link } from "../../services/sidecar/kernel/rtnetlink.ts";
import { createLogger, type Logger } from "../../services/shared/log.ts";
import { printResult, runScript, scriptInput } from "./harness.ts";

/** The sidecar's veth pair on a bridge, as the test set it up (see topology.addSidecarVeth). */
export interface VethPair {
  /** The end that is a port of the bridge (imdb-…). */
  bridgeSide: string;
  /** The end carrying 169.254.169.254 (imds-…). */
  sidecar: string;
}

interface OnBridge {
  bridge: string;
  veth: VethPair;
}

export type InterceptRequest =
  /** intercept.install once; its status. */
  | OnBridge & { action: "install" }
  /** intercept.remove; null. */
  | OnBridge & { action: "remove" }
  /** installIngressGuard; null. */
  | { action: "guard" }
  /**
   * intercept.install again and again on ONE handle, as the sidecar's reconcile does: first
   * over a stale table an earlier run left, then with nothing changed, after an unrelated
   * nftables change, and after the table was deleted, a chain flushed, a set emptied.
   */
  | OnBridge & { action: "repeatedInstall" }
  /**
   * Times `calls` intercept.install calls with nothing new, then `calls` writes of the same
   * table (an nftables commit each); milliseconds per call.
   */
  | OnBridge & { action: "timeReconcile"; vmPorts: string[]; calls: number };

export interface RepeatedInstall {
  /** [changed, whether the ruleset generation moved (= something was committed)] per call. */
  calls: Record<string, [boolean, boolean]>;
  /** `nft list table bridge kubevirt-imds` after each call. */
  listings: Record<string, string>;
  /** The warnings logged, in order. */
  warnings: string[];
}

export interface ReconcileTimes {
  reconcile: number[];
  write: number[];
}

/** What each action prints. */
export interface InterceptResults {
  install: InterceptStatus;
  remove: null;
  guard: null;
  repeatedInstall: RepeatedInstall;
  timeReconcile: ReconcileTimes;
}

const SCRIPT = new URL(import.meta.url);

/** Runs `request` in a fresh process in namespace `ns`; its typed result. */
export async function runIntercept<R extends InterceptRequest>(
  ns: string,
  request: R,
): Promise<InterceptResults[R["action"]]> {
  const output = await runScript<InterceptResults[R["action"]]>(
    SCRIPT,
    [JSON.stringify(request)],
    { namespace: ns },
  );
  return output.result;
}

function mustFind(name: string): Link {
  const link = findLink(name);
  if (!link) throw new Error(`no interface ${name}`);
  return link;
}

function context({ bridge, veth }: OnBridge, log: Logger): InterceptContext {
  const bridgeLink = mustFind(bridge);
  const sidecar = mustFind(veth.sidecar);
  return {
    bridge: bridgeLink.name,
    bridgeIndex: bridgeLink.index,
    vethBridgeSide: veth.bridgeSide,
    vethSidecarSide: sidecar.name,
    vethSidecarIndex: sidecar.index,
    vethMac: sidecar.mac,
    log,
  };
}

/** Log lines go to stderr: stdout carries only the result. */
function stderrLogger(): Logger {
  return createLogger({ component: "test", sink: (line) => console.error(line) });
}

function generation(): number {
  const sock = openNetlink(NETLINK_NETFILTER);
  try {
    return rulesetGeneration(sock);
  } finally {
    closeNetlink(sock);
  }
}

function nft(...args: string[]): string {
  const out = new Deno.Command("nft", { args }).outputSync();
  if (!out.success) {
    throw new Error(`nft ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function repeatedInstall(request: OnBridge): RepeatedInstall {
  const warnings: string[] = [];
  const log = createLogger({
    component: "test",
    sink: (line, level) => {
      if (level === "warn") warnings.push(JSON.parse(line).msg);
    },
  });
  const ctx = context(request, log);
  const intercept = createBridgeIntercept();
  const calls: RepeatedInstall["calls"] = {};
  const listings: RepeatedInstall["listings"] = {};
  const call = (name: string) => {
    const before = generation();
    const status = intercept.install(ctx);
    calls[name] = [status.changed, generation() !== before];
    listings[name] = nft("list", "table", "bridge", "kubevirt-imds");
  };
  nft("add", "table", "bridge", "kubevirt-imds");
  nft("add", "chain", "bridge", "kubevirt-imds", "left-by-an-earlier-run");
  call("first");
  call("again");
  nft("add", "table", "ip", "unrelated");
  call("afterUnrelatedChange");
  nft("delete", "table", "bridge", "kubevirt-imds");
  call("afterTableDeleted");
  nft("flush", "chain", "bridge", "kubevirt-imds", "forward");
  call("afterChainFlushed");
  nft("flush", "set", "bridge", "kubevirt-imds", "vm_ports");
  call("afterSetFlushed");
  call("last");
  return { calls, listings, warnings };
}

function timeReconcile(
  request: OnBridge & { vmPorts: string[]; calls: number },
): ReconcileTimes {
  const silent: Logger = {
    debug() {},
    info() {},
    warn() {},
    error() {},
    with: () => silent,
  };
  const ctx = context(request, silent);
  const intercept = createBridgeIntercept();
  intercept.install(ctx);
  const bridge = mustFind(request.bridge);
  const target = {
    bridge: bridge.name,
    bridgeMac: bridge.mac,
    vmPorts: request.vmPorts,
    sidecarPort: request.veth.bridgeSide,
    sidecarMac: ctx.vethMac,
  };
  const reconcile: number[] = [];
  const write: number[] = [];
  // Separate loops: every write moves the ruleset generation, which makes the next check
  // read the table back (the path taken after someone else's nftables change).
  for (let i = 0; i < request.calls; i++) {
    const started = performance.now();
    intercept.install(ctx);
    reconcile.push(performance.now() - started);
  }
  for (let i = 0; i < request.calls; i++) {
    const started = performance.now();
    commit(interceptBatch([target]), "write");
    write.push(performance.now() - started);
  }
  return { reconcile, write };
}

function main(request: InterceptRequest): InterceptResults[InterceptRequest["action"]] {
  switch (request.action) {
    case "install":
      return createBridgeIntercept().install(context(request, stderrLogger()));
    case "remove":
      createBridgeIntercept().remove(context(request, stderrLogger()));
      return null;
    case "guard":
      installIngressGuard(stderrLogger());
      return null;
    case "repeatedInstall":
      return repeatedInstall(request);
    case "timeReconcile":
      return timeReconcile(request);
  }
}

if (import.meta.main) printResult(main(scriptInput<InterceptRequest>()));
