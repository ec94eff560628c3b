/**
 * The reconcile loop against an in-memory kernel (testing/fake_kernel.ts): no root, no
 * namespaces. The lab tests (run_*_test.ts) run the same loop on the real kernel.
 */

import { assert, assertEquals } from "../../../testing/assert.ts";
import { createFakeKernel, type FakeKernel, type Step } from "../../../testing/fake_kernel.ts";
import { createLogger } from "../../shared/log.ts";
import { type NetworkRuntime, startNetwork } from "./reconcile.ts";

interface Run {
  kernel: FakeKernel;
  runtime: NetworkRuntime;
  /** Log lines, as `level: message`. */
  lines: string[];
}

function start(
  options: { bridgeIntercept?: boolean; arpResponder?: boolean; kernel?: FakeKernel } = {},
): Run {
  const kernel = options.kernel ?? createFakeKernel();
  const lines: string[] = [];
  const log = createLogger({
    component: "test",
    level: "debug",
    sink: (line, level) => lines.push(`${level}: ${JSON.parse(line).msg}`),
  });
  const runtime = startNetwork({
    network: {
      bridgeNames: [],
      arpResponder: options.arpResponder ?? true,
      bridgeIntercept: options.bridgeIntercept ?? true,
    },
    logLevel: "debug",
    log,
    kernel,
    recheckMs: 60_000,
  });
  return { kernel, runtime, lines };
}

/** A masquerade-like VM bridge with the VM's tap plugged in. */
function vmBridge(kernel: FakeKernel, name = "k6t-eth0", tap = "tap0"): void {
  kernel.addBridge(name);
  kernel.addPort(name, tap);
}

function count(lines: string[], text: string): number {
  return lines.filter((line) => line.includes(text)).length;
}

Deno.test("a bridge that appears is attached, served by the responder and intercepted", async () => {
  const { kernel, runtime, lines } = start();
  await kernel.idle();
  assert(lines.includes("info: waiting for VM bridge…"));
  vmBridge(kernel);
  await kernel.idle();

  const state = runtime.bridges.get("k6t-eth0");
  assert(state, "the bridge is served");
  assertEquals(state.attachment.sidecar.name, "imds-eth0");
  assertEquals(kernel.link("imdb-eth0")?.master, kernel.link("k6t-eth0")?.index);
  assert(state.intercepted);
  const targets = kernel.responders[0].updates.at(-1)!;
  assertEquals(targets.map((target) => target.bridge), ["k6t-eth0"]);
  assertEquals(targets[0].vmPorts, [kernel.link("tap0")!.index]);
  assertEquals(targets[0].mac, kernel.link("imds-eth0")!.mac);
  assert(lines.includes("info: found bridge k6t-eth0"));
  assert(
    lines.includes(
      "info: ARP responder listening on k6t-eth0 for 169.254.169.254, answering VM port tap0",
    ),
  );
  await runtime.stop();
  assert(kernel.eventsClosed && kernel.responders[0].stopped);
});

Deno.test("a bridge that disappears is forgotten, its interception removed", async () => {
  const { kernel, runtime, lines } = start();
  vmBridge(kernel);
  await kernel.idle();
  kernel.deleteLink("k6t-eth0");
  await kernel.idle();

  assertEquals(runtime.bridges.size, 0);
  assert(kernel.journal.includes("removeIntercept k6t-eth0"));
  assertEquals(kernel.responders[0].updates.at(-1), []);
  assert(lines.includes("warn: bridge k6t-eth0 is gone; will attach again if it comes back"));
  assertEquals(count(lines, "waiting for VM bridge"), 2, "waiting again, said once more");
  await runtime.stop();
});

Deno.test("a bridge replaced under the same name is attached again, keeping the veth's MAC", async () => {
  const { kernel, runtime, lines } = start();
  vmBridge(kernel);
  await kernel.idle();
  const before = runtime.bridges.get("k6t-eth0")!.attachment;

  kernel.deleteLink("tap0");
  const replaced = kernel.replaceBridge("k6t-eth0");
  kernel.addPort("k6t-eth0", "tap0");
  await kernel.idle();

  const after = runtime.bridges.get("k6t-eth0")!.attachment;
  assertEquals(after.bridgeIndex, replaced.index);
  assertEquals(after.sidecar.mac, before.sidecar.mac);
  assertEquals(kernel.link("imdb-eth0")?.master, replaced.index);
  assertEquals(
    kernel.responders[0].updates.at(-1)![0].vmPorts,
    [kernel.link("tap0")!.index],
    "the new tap is served",
  );
  assert(
    lines.includes("warn: the attachment to k6t-eth0 was changed or removed; repairing it"),
  );
  await runtime.stop();
});

Deno.test("a veth removed behind the sidecar's back is re-created with the same MAC", async () => {
  const { kernel, runtime, lines } = start();
  vmBridge(kernel);
  await kernel.idle();
  const before = runtime.bridges.get("k6t-eth0")!.attachment;

  kernel.deleteLink("imds-eth0");
  await kernel.idle();

  const after = runtime.bridges.get("k6t-eth0")!.attachment;
  assert(!after.reused, "a new pair");
  assert(after.sidecar.index !== before.sidecar.index);
  assertEquals(after.sidecar.mac, before.sidecar.mac, "guests keep their cached MAC");
  assertEquals(kernel.responders[0].updates.at(-1)![0].sidecarIndex, after.sidecar.index);
  assertEquals(count(lines, "repairing it"), 1);
  await runtime.stop();
});

Deno.test("interception that fails is retried, each distinct error logged once", async () => {
  const kernel = createFakeKernel();
  const errors = ["no nftables", "no nftables", "table busy", "table busy"];
  kernel.beforeStep = (step) => {
    if (step === "installIntercept" && errors.length > 0) throw new Error(errors.shift());
  };
  const { runtime, lines } = start({ kernel });
  vmBridge(kernel);
  await kernel.idle();
  for (let i = 0; i < 4; i++) {
    kernel.notify();
    await kernel.idle();
  }

  const failures = lines.filter((line) => line.startsWith("error: could not intercept k6t-eth0"));
  assertEquals(failures.length, 2, failures.join("\n"));
  const state = runtime.bridges.get("k6t-eth0")!;
  assert(state.intercepted, "it recovered");
  assertEquals(state.interceptError, undefined);
  await runtime.stop();
});

Deno.test("a failed ARP responder is restarted and told about the bridges again", async () => {
  const { kernel, runtime, lines } = start();
  vmBridge(kernel);
  await kernel.idle();
  kernel.responders[0].fail(new Error("packet socket broke"));
  await kernel.idle();
  // The restart is asynchronous (the old responder stops first), then it triggers a reconcile.
  while (kernel.responders.length < 2) await new Promise((resolve) => setTimeout(resolve, 1));
  await kernel.idle();

  assert(kernel.responders[0].stopped);
  assertEquals(kernel.responders[1].updates.at(-1)!.map((target) => target.bridge), [
    "k6t-eth0",
  ]);
  assert(lines.includes("error: the ARP responder failed; restarting it"));
  assertEquals(count(lines, "answering VM port tap0"), 2, "said again for the new responder");
  await runtime.stop();
  assert(kernel.responders[1].stopped);
});

Deno.test("a responder that cannot be restarted is logged and the loop goes on", async () => {
  const kernel = createFakeKernel();
  const { runtime, lines } = start({ kernel });
  vmBridge(kernel);
  await kernel.idle();
  kernel.beforeStep = (step) => {
    if (step === "startArpResponder") throw new Error("no NET_RAW");
  };
  kernel.responders[0].fail(new Error("packet socket broke"));
  while (!lines.some((line) => line.includes("could not restart"))) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  kernel.beforeStep = undefined;
  vmBridge(kernel, "k6t-net1", "tap1");
  await kernel.idle();
  assert(runtime.bridges.has("k6t-net1"), "bridges are still attached");
  await runtime.stop();
});

/** Steps a reconcile takes for a new bridge, then for one that went away. */
const STEPS: Step[] = [
  "listLinks",
  "listIpv4Addresses",
  "attachToBridge",
  "updateResponder",
  "installIntercept",
  "removeIntercept",
];

for (const stopAt of STEPS) {
  Deno.test(`stop during ${stopAt}: no step runs after it, and stop resolves`, async () => {
    const kernel = createFakeKernel();
    const { runtime } = start({ kernel });
    await kernel.idle();
    if (stopAt === "removeIntercept") {
      vmBridge(kernel);
      await kernel.idle();
    }
    let stopping: Promise<void> | undefined;
    let stoppedAt = -1;
    kernel.beforeStep = (step) => {
      if (step !== stopAt || stopping) return;
      stoppedAt = kernel.journal.length;
      stopping = runtime.stop();
      // A slow interception step: the stop request arrives while it runs.
      if (step.endsWith("Intercept")) return new Promise((resolve) => setTimeout(resolve, 5));
    };
    if (stopAt === "removeIntercept") kernel.deleteLink("k6t-eth0");
    else vmBridge(kernel);
    while (!stopping) await new Promise((resolve) => setTimeout(resolve, 1));
    await stopping;

    assertEquals(kernel.journal.slice(stoppedAt), [], "nothing after the interrupted step");
    assert(kernel.eventsClosed, "the watcher is done");
    assert(kernel.responders.every((responder) => responder.stopped));
  });
}

Deno.test("stop while a failed responder is being restarted starts no new one", async () => {
  const { kernel, runtime } = start();
  vmBridge(kernel);
  await kernel.idle();
  kernel.responders[0].fail(new Error("packet socket broke"));
  await runtime.stop();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assertEquals(kernel.responders.length, 1);
});

Deno.test("without bridge interception nothing is intercepted", async () => {
  const { kernel, runtime } = start({ bridgeIntercept: false });
  vmBridge(kernel);
  await kernel.idle();
  assert(!kernel.journal.some((entry) => entry.startsWith("installIntercept")));
  assert(!runtime.bridges.get("k6t-eth0")!.intercepted);
  await runtime.stop();
});
