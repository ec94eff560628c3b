/**
 * The network namespace lab: for each KubeVirt binding mode, a copy of the
 * virt-launcher pod's network namespace with a guest behind the tap, the real
 * sidecar (`main.ts run`) in the pod, and the guest's view of the service.
 * Needs root; skipped otherwise (never under CI=true).
 */
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { METADATA_ADDRESS } from "../shared/contract.ts";
import { netnsTest } from "../../testing/netns/harness.ts";
import { ipBatch, sleep, waitFor } from "../../testing/netns/command.ts";
import {
  assertHiddenFromNetworkNeighbours,
  assertNoSidecarArpReplies,
  assertNotRoutableThroughPod,
  assertPodIpUnreachable,
  assertServed,
  assertSidecarAnswersArp,
  assertStoppedCleanly,
  sidecarMacs,
  waitUntilServed,
} from "../../testing/netns/expectations.ts";
import { step, withLab } from "../../testing/netns/lab_steps.ts";
import { curl, metadataLinks, neighbourMac, startCapture } from "../../testing/netns/probes.ts";
import {
  labIdentity,
  logMatching,
  type Sidecar,
  startSidecar,
  type VmIdentity,
} from "../../testing/netns/sidecar_process.ts";
import { startDecoyMetadataService } from "../../testing/netns/node_services.ts";
import {
  addBridgeBindingNic,
  addMasqueradeNic,
  addMultusNic,
  configureGuestAddress,
  createGuest,
  createPod,
  MASQUERADE,
  type Pod,
  POD_NETWORK,
} from "../../testing/netns/topology.ts";

const GUEST_LINK_LOCAL = "169.254.100.100";

/**
 * The steps every binding passes: from outside the pod, the API answers neither on the pod IP
 * nor to a neighbour that routes 169.254.169.254 via the pod IP.
 */
async function closedToTheOutside(
  t: Deno.TestContext,
  logs: () => Sidecar | undefined,
  pod: Pod,
  identity: VmIdentity,
  options: { beforeRouting?: () => Promise<unknown> } = {},
): Promise<void> {
  await step(t, "the API is not reachable on the pod IP from the node", logs, async () => {
    await assertPodIpUnreachable(pod, identity);
  });
  await step(
    t,
    "a neighbour routing 169.254.169.254 via the pod IP gets nothing",
    logs,
    async () => {
      await options.beforeRouting?.();
      await assertNotRoutableThroughPod(pod, identity);
    },
  );
}

netnsTest(
  "lab: masquerade — a bridge wired seconds after start is picked up and serves the guest",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-masquerade");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;

      await step(
        t,
        "the sidecar keeps running while the VM's bridge does not exist",
        logs,
        async () => {
          await sidecar.waitForLog(() => true);
          await sleep(2000);
          const exited = await Promise.race([
            sidecar.status.then(() => true),
            sleep(0).then(() => false),
          ]);
          assert(!exited, "the sidecar exited while waiting for the bridge");
        },
      );

      await addMasqueradeNic(pod, guest);

      await step(
        t,
        "the guest (10.0.2.2 via 10.0.2.1) gets identity, token and cloud-init files",
        logs,
        async () => {
          await waitUntilServed(guest.ns, identity);
          await assertServed(guest.ns, identity);
        },
      );

      await step(t, "ARP for other addresses gets no answer from the sidecar", logs, async () => {
        await assertNoSidecarArpReplies(
          guest.ns,
          "eth0",
          [POD_NETWORK.podIp, "10.0.2.99", "169.254.169.253"],
          await sidecarMacs(pod.ns),
        );
      });

      await closedToTheOutside(t, logs, pod, identity);
    });
  },
);

netnsTest(
  "lab: bridge binding — the guest's requests to 169.254.169.254 never leave the pod",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      await addBridgeBindingNic(pod, guest);
      // The node's own metadata service, which the guest must never reach.
      const decoy = await startDecoyMetadataService(lab, pod.node);
      const identity = labIdentity("vm-bridge");
      const running: { sidecar?: Sidecar } = {};
      const logs = () => running.sidecar;

      await step(
        t,
        "without the sidecar the guest's request leaves the pod for the node (lab check)",
        logs,
        async () => {
          const capture = await startCapture(pod.ns, pod.uplink, `host ${METADATA_ADDRESS}`);
          const reply = await curl(guest.ns, "/v1/identity");
          const packets = await capture.stop();
          assertEquals(reply.body, decoy.body);
          assert(packets.length > 0, "the capture on the uplink saw nothing");
        },
      );

      running.sidecar = await startSidecar(lab, pod.ns, { identity });

      await step(
        t,
        "the guest (pod IP, cluster gateway) is answered by the sidecar",
        logs,
        async () => {
          await waitUntilServed(guest.ns, identity);
          const capture = await startCapture(pod.ns, pod.uplink, `host ${METADATA_ADDRESS}`);
          const served = await assertServed(guest.ns, identity).then(() => undefined, (e) => e);
          const packets = await capture.stop();
          if (served) throw served;
          assertEquals(packets, [], "packets to or from 169.254.169.254 crossed the pod's uplink");
        },
      );

      await step(t, "ARP for other addresses gets no answer from the sidecar", logs, async () => {
        await assertNoSidecarArpReplies(
          guest.ns,
          "eth0",
          [POD_NETWORK.gateway, POD_NETWORK.unusedIp, "169.254.75.10"],
          await sidecarMacs(pod.ns),
        );
      });

      await closedToTheOutside(t, logs, pod, identity, {
        // The node's own metadata address would win over the route: take it away first.
        beforeRouting: () => ipBatch(pod.node, [`address del ${METADATA_ADDRESS}/32 dev lo`]),
      });

      await step(
        t,
        "a neighbour routing 169.254.169.254 via the bridge's 169.254.75.10 gets nothing",
        logs,
        async () => {
          await assertNotRoutableThroughPod(pod, identity, { via: "169.254.75.10", onlink: true });
        },
      );
    });
  },
);

netnsTest(
  "lab: Multus without DHCP — link-local guest, ARP responder, restart keeps the MAC, SIGTERM",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-multus");
      let sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      const nic = await addMultusNic(pod, guest, { network: "nodhcp" });
      await configureGuestAddress(guest, nic.guestInterface, `${GUEST_LINK_LOCAL}/16`);
      let macs: string[] = [];

      await step(
        t,
        `the guest with only ${GUEST_LINK_LOCAL}/16 and no gateway is served`,
        logs,
        async () => {
          await waitUntilServed(guest.ns, identity);
          await assertServed(guest.ns, identity);
          macs = await sidecarMacs(pod.ns);
        },
      );

      await step(
        t,
        "the sidecar answers and logs the guest's ARP request for 169.254.169.254",
        logs,
        async () => {
          await assertSidecarAnswersArp(guest.ns, nic.guestInterface, macs);
          const escaped = METADATA_ADDRESS.replaceAll(".", "\\.");
          const request = await sidecar.waitForLog(
            logMatching(new RegExp(`^ARP request for ${escaped} from `)),
          );
          assertMatch(
            String(request.msg),
            new RegExp(`from ${GUEST_LINK_LOCAL} \\(${nic.guestMac}\\)`),
          );
          const reply = await sidecar.waitForLog(logMatching(/^ARP reply sent: /));
          assertMatch(
            String(reply.msg),
            new RegExp(`${METADATA_ADDRESS} is at (${macs.join("|")})`),
          );
        },
      );

      await step(t, "ARP for other addresses gets no answer from the sidecar", logs, async () => {
        await assertNoSidecarArpReplies(
          guest.ns,
          nic.guestInterface,
          [POD_NETWORK.podIp, "169.254.1.1", "169.254.169.253", MASQUERADE.gateway],
          macs,
        );
      });

      await closedToTheOutside(t, logs, pod, identity);

      await step(
        t,
        "another host on the secondary network gets no ARP answer and no API",
        logs,
        async () => {
          await assertHiddenFromNetworkNeighbours(pod, nic.networkBridge!, identity, macs);
        },
      );

      await step(t, "SIGTERM stops it promptly and leaves no process behind", logs, async () => {
        assertStoppedCleanly(await sidecar.stop());
      });

      await step(
        t,
        "a restarted sidecar keeps the same MAC and the guest keeps working",
        logs,
        async () => {
          const cached = await neighbourMac(guest.ns, METADATA_ADDRESS);
          sidecar = await startSidecar(lab, pod.ns, { identity });
          await waitUntilServed(guest.ns, identity);
          assertEquals(await sidecarMacs(pod.ns), macs);
          if (cached) assertEquals(await neighbourMac(guest.ns, METADATA_ADDRESS), cached);
          await assertServed(guest.ns, identity);
        },
      );

      await step(
        t,
        "an attachment that disappears is repaired and the guest is served again",
        logs,
        async () => {
          const [veth] = await metadataLinks(pod.ns).then((all) =>
            all.filter((l) => l.name !== "lo")
          );
          assert(veth, "no sidecar veth to remove");
          await ipBatch(pod.ns, [`link del ${veth.name}`]);
          await waitFor("the sidecar to re-attach", async () => {
            const again = await sidecarMacs(pod.ns);
            return again.length === 1 ? again : undefined;
          });
          // A guest would re-resolve once its cache entry goes stale; do it now.
          await ipBatch(guest.ns, [`neigh flush dev ${nic.guestInterface}`]);
          await waitUntilServed(guest.ns, identity);
        },
      );
    });
  },
);

netnsTest("lab: passt — the service is reachable from inside the pod's namespace", async (t) => {
  await withLab(async (lab) => {
    const pod = await createPod(lab);
    const identity = labIdentity("vm-passt");
    const sidecar = await startSidecar(lab, pod.ns, {
      identity,
      env: { IMDS_PASST: "true" },
    });
    const logs = () => sidecar;

    await step(
      t,
      "passt's sockets in the pod namespace reach identity, token and cloud-init files",
      logs,
      async () => {
        await waitUntilServed(pod.ns, identity);
        await assertServed(pod.ns, identity);
      },
    );

    await closedToTheOutside(t, logs, pod, identity);
  });
});

netnsTest(
  "lab: several NICs — masquerade and a legacy-named Multus network both work",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-multi");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      await addMasqueradeNic(pod, guest, { guestInterface: "eth0" });
      const multus = await addMultusNic(pod, guest, {
        network: "storage",
        guestInterface: "eth1",
        ordinal: 1,
      });
      await configureGuestAddress(guest, multus.guestInterface, `${GUEST_LINK_LOCAL}/16`);

      const clients = { eth0: MASQUERADE.guestIp, eth1: GUEST_LINK_LOCAL };
      for (const [nic, client] of Object.entries(clients)) {
        await step(t, `the guest is served through ${nic} (as ${client})`, logs, async () => {
          await waitUntilServed(guest.ns, identity, { interface: nic });
          await assertServed(guest.ns, identity, { interface: nic });
          await sidecar.waitForLog((line) => line.msg === "request" && line.client === client);
        });
      }

      await step(
        t,
        "the link-local NIC resolved 169.254.169.254 to the sidecar",
        logs,
        async () => {
          const macs = await sidecarMacs(pod.ns);
          assertEquals(macs.length, 2, "one sidecar interface per bridge");
          await assertSidecarAnswersArp(guest.ns, multus.guestInterface, macs);
          await assertNoSidecarArpReplies(
            guest.ns,
            multus.guestInterface,
            [POD_NETWORK.podIp],
            macs,
          );
        },
      );

      await closedToTheOutside(t, logs, pod, identity);
    });
  },
);
