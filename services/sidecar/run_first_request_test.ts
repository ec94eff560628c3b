/**
 * Lab: a link-local guest (Multus network without DHCP) whose first request must be answered
 * even though it never asks for 169.254.169.254 by ARP — it took the sidecar's MAC from the
 * sidecar's announcement, or kept it from an earlier run. The sidecar then learns the way back
 * from the guest's connection itself, through the veth of the bridge it came in on.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { METADATA_ADDRESS } from "../shared/contract.ts";
import { vethNames } from "./datapath/interface_names.ts";
import { netnsTest } from "../../testing/netns/harness.ts";
import { ipBatch, sysctl, waitFor } from "../../testing/netns/command.ts";
import { sidecarMacs } from "../../testing/netns/expectations.ts";
import { step, withLab } from "../../testing/netns/lab_steps.ts";
import { curl, hasHostRoute, neighbourMac, routeDevice } from "../../testing/netns/probes.ts";
import {
  labIdentity,
  type LogLine,
  logMatching,
  type Sidecar,
  startSidecar,
  type VmIdentity,
} from "../../testing/netns/sidecar_process.ts";
import {
  addMultusNic,
  configureGuestAddress,
  createGuest,
  createPod,
  type VmNic,
} from "../../testing/netns/topology.ts";

/** A guest on two link-local networks, one address on each. */
const NETWORKS = [
  { network: "ll-a", guestInterface: "eth0", address: "169.254.100.100" },
  { network: "ll-b", guestInterface: "eth1", address: "169.254.200.200" },
] as const;

/**
 * The sidecar's log line saying it serves `bridge` through a VM port: the bridge is attached
 * (its veth exists) and the ARP responder announces the address through that port.
 */
function servingVmPort(bridge: string): (line: LogLine) => boolean {
  return (line) =>
    typeof line.msg === "string" && line.msg.startsWith("ARP responder listening on") &&
    line.bridge === bridge && String(line.vmPorts).startsWith("tap");
}

/** The guest's first request through `guestInterface`: one try, 3 s at most, no retry loop. */
async function firstRequest(
  guestNs: string,
  guestInterface: string,
  identity: VmIdentity,
): Promise<void> {
  const reply = await curl(guestNs, "/v1/identity", {
    interface: guestInterface,
    connectTimeoutSeconds: 3,
    maxTimeSeconds: 3,
  });
  assertEquals(reply.status, 200);
  assert(reply.body.includes(`"vmName":"${identity.vmName}"`), `not this VM: ${reply.body}`);
}

netnsTest(
  "lab: link-local guests that never ARP for 169.254.169.254 are answered on their first request",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      // The guest takes a MAC from an unsolicited announcement (arp_accept), so it has
      // 169.254.169.254 cached before it ever connects, and never sends a who-has.
      await sysctl(guest.ns, ["net.ipv4.conf.default.arp_accept=1"]);
      const identity = labIdentity("vm-first-request");
      let sidecar: Sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      await sidecar.waitForLog(logMatching(/^waiting for VM bridge/));
      const nics: (VmNic & { address: string; sidecarVeth: string })[] = [];
      for (const { network, guestInterface, address } of NETWORKS) {
        const nic = await addMultusNic(pod, guest, { network, guestInterface });
        await configureGuestAddress(guest, guestInterface, `${address}/16`);
        nics.push({ ...nic, address, sidecarVeth: vethNames(nic.bridge).sidecar });
      }

      await step(t, "the guest cached the sidecar's MAC from its announcement", logs, async () => {
        // Each bridge is attached by a reconcile that follows its own link events, so the
        // second one may still be under way when the NICs are in place.
        for (const nic of nics) await sidecar.waitForLog(servingVmPort(nic.bridge));
        const macs = await sidecarMacs(pod.ns);
        assertEquals(macs.length, 2, "one sidecar interface per bridge");
        for (const nic of nics) {
          const cached = await waitFor(
            `the announcement to reach ${nic.guestInterface}`,
            () => neighbourMac(guest.ns, METADATA_ADDRESS, nic.guestInterface),
            { timeoutMs: 5000 },
          ).catch(() => undefined);
          assert(cached && macs.includes(cached), `${nic.guestInterface} cached ${cached}`);
          assertEquals(
            await hasHostRoute(pod.ns, nic.address),
            false,
            "no route back yet: the guest never asked by ARP",
          );
        }
      });

      for (const nic of nics) {
        await step(
          t,
          `the first request through ${nic.guestInterface} is answered, and the reply route uses ${nic.bridge}'s veth`,
          logs,
          async () => {
            await firstRequest(guest.ns, nic.guestInterface, identity);
            assertEquals(await routeDevice(pod.ns, nic.address), nic.sidecarVeth);
            await sidecar.waitForLog(
              logMatching(
                new RegExp(
                  `^route back to ${
                    nic.address.replaceAll(".", "\\.")
                  } through ${nic.sidecarVeth} \\(learned from its connection`,
                ),
              ),
            );
          },
        );
      }

      await step(
        t,
        "after a restart that lost the routes back, the guest's first request is answered",
        logs,
        async () => {
          const stopped = await sidecar.stop();
          assertEquals({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null });
          // As if the earlier run had never learned them: the guest keeps its cached MAC.
          await ipBatch(pod.ns, nics.map((nic) => `route del ${nic.address}/32`));
          for (const nic of nics) assertEquals(await hasHostRoute(pod.ns, nic.address), false);
          sidecar = await startSidecar(lab, pod.ns, { identity });
          for (const nic of nics) await sidecar.waitForLog(servingVmPort(nic.bridge));
          for (const nic of nics) {
            assert(await neighbourMac(guest.ns, METADATA_ADDRESS, nic.guestInterface));
            await firstRequest(guest.ns, nic.guestInterface, identity);
            assertEquals(await routeDevice(pod.ns, nic.address), nic.sidecarVeth);
          }
        },
      );
    });
  },
);
