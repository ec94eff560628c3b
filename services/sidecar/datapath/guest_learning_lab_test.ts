/**
 * Bounded guest-route learning in the network namespace lab: a Multus network without DHCP, a
 * guest at 169.254.100.100 served by the real sidecar (production runtime flags), and a flood of
 * 2,000 spoofed link-local senders through the VM port. The node's neighbour table is shared by
 * every namespace on the machine, so the flood must leave it alone.
 */
import { assert, assertEquals } from "../../../testing/assert.ts";
import { METADATA_ADDRESS } from "../../shared/contract.ts";
import { netnsTest } from "../../../testing/netns/harness.ts";
import { ipBatch, mustRun, waitFor } from "../../../testing/netns/command.ts";
import { assertStoppedCleanly, waitUntilServed } from "../../../testing/netns/expectations.ts";
import { step, withLab } from "../../../testing/netns/lab_steps.ts";
import { curl, metadataLinks } from "../../../testing/netns/probes.ts";
import { runArpFlood } from "../../../testing/netns/arp_flood.ts";
import { labIdentity, logMatching, startSidecar } from "../../../testing/netns/sidecar_process.ts";
import {
  addMultusNic,
  configureGuestAddress,
  createGuest,
  createPod,
} from "../../../testing/netns/topology.ts";
import { GUEST_CAPACITY_PER_BRIDGE } from "./learned_guests.ts";
import { GUEST_LEARNING_RATE } from "./learning_limiter.ts";

const GUEST = "169.254.100.100";
const SPOOFED_SENDERS = 2000;
const IDLE_SECONDS = 3;

/** IPv4 neighbour entries of every namespace on the machine (the table gc_thresh3 limits). */
async function nodeNeighbourEntries(): Promise<number> {
  const [, first] = (await Deno.readTextFile("/proc/net/stat/arp_cache")).split("\n");
  return parseInt(first.trim().split(/\s+/)[0], 16);
}

async function gcThresh3(): Promise<number> {
  return Number(await Deno.readTextFile("/proc/sys/net/ipv4/neigh/default/gc_thresh3"));
}

/** Routes and neighbour entries the sidecar holds on its veth for link-local guests. */
async function learnedOn(
  podNs: string,
  veth: string,
): Promise<{ routes: string[]; neighbours: string[] }> {
  const routes = JSON.parse(
    await mustRun(["ip", "-n", podNs, "-j", "-4", "route", "show", "dev", veth]),
  ) as { dst: string }[];
  const neighbours = JSON.parse(
    await mustRun(["ip", "-n", podNs, "-j", "-4", "neigh", "show", "dev", veth]),
  ) as { dst: string }[];
  return {
    routes: routes.map((route) => route.dst).filter((dst) => dst.startsWith("169.254.")),
    neighbours: neighbours.map((entry) => entry.dst),
  };
}

netnsTest(
  "lab: a guest flooding spoofed link-local senders gets a bounded table, the real guest stays served",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-flood");
      const env = { IMDS_GUEST_ROUTE_IDLE_SECONDS: String(IDLE_SECONDS), IMDS_LOG_LEVEL: "info" };
      let sidecar = await startSidecar(lab, pod.ns, { identity, env });
      const logs = () => sidecar;
      const nic = await addMultusNic(pod, guest, { network: "nodhcp" });
      await configureGuestAddress(guest, nic.guestInterface, `${GUEST}/16`);
      let veth = "";
      let sidecarMac = "";

      await step(t, `the guest at ${GUEST} is served`, logs, async () => {
        await waitUntilServed(guest.ns, identity);
        const [link] = (await metadataLinks(pod.ns)).filter((l) => l.name !== "lo");
        veth = link.name;
        sidecarMac = link.mac;
        assertEquals((await learnedOn(pod.ns, veth)).routes, [`${GUEST}`]);
      });

      await step(
        t,
        `${SPOOFED_SENDERS} spoofed senders: at most ${GUEST_CAPACITY_PER_BRIDGE} routes, the node's neighbour table untouched, the guest served throughout`,
        logs,
        async () => {
          const limit = await gcThresh3();
          const baseline = await nodeNeighbourEntries();
          const logLinesBefore = sidecar.logs.length;
          let flooding = true;
          const seen = {
            guestOk: 0,
            guestFailed: [] as string[],
            routes: 0,
            neighbours: 0,
            node: 0,
          };
          const watch = (async () => {
            while (flooding) {
              const [reply, learned, node] = await Promise.all([
                curl(guest.ns, "/v1/identity").then((r) => String(r.status), (e) => String(e)),
                learnedOn(pod.ns, veth),
                nodeNeighbourEntries(),
              ]);
              if (reply === "200") seen.guestOk++;
              else seen.guestFailed.push(reply);
              seen.routes = Math.max(seen.routes, learned.routes.length);
              seen.neighbours = Math.max(seen.neighbours, learned.neighbours.length);
              seen.node = Math.max(seen.node, node);
            }
          })();
          const flood = await runArpFlood(guest.ns, {
            iface: nic.guestInterface,
            targetIp: METADATA_ADDRESS,
            count: SPOOFED_SENDERS,
          });
          flooding = false;
          await watch;
          const after = await learnedOn(pod.ns, veth);
          const figures = { flood, baseline, limit, ...seen, after };
          console.log(`flood figures: ${JSON.stringify(figures)}`);
          assertEquals(flood.sent, SPOOFED_SENDERS);
          assert(seen.routes <= GUEST_CAPACITY_PER_BRIDGE, `routes: ${JSON.stringify(figures)}`);
          assert(after.routes.length <= GUEST_CAPACITY_PER_BRIDGE, JSON.stringify(figures));
          assert(seen.neighbours <= GUEST_CAPACITY_PER_BRIDGE, JSON.stringify(figures));
          assert(after.routes.includes(GUEST), "the real guest's route was displaced");
          // Other namespaces on the machine come and go meanwhile: the margin is theirs.
          assert(seen.node < limit / 2, `node-wide neighbour entries: ${JSON.stringify(figures)}`);
          assertEquals(seen.guestFailed, [], "the guest's requests during the flood");
          assert(seen.guestOk > 0, "the guest made no request during the flood");
          const enobufs = sidecar.logs.slice(logLinesBefore).filter((line) =>
            JSON.stringify(line).includes("ENOBUFS")
          );
          assertEquals(enobufs, []);
        },
      );

      await step(t, "the flood is reported once, with its counts", logs, async () => {
        const report = await sidecar.waitForLog(
          logMatching(/new link-local addresses within .* that are learned/),
          15_000,
        );
        // How many frames reach the sidecar depends on the machine's load; all are counted.
        const { dropped, learned } = report as unknown as { dropped: number; learned: number };
        assert(dropped > 0 && dropped + learned <= SPOOFED_SENDERS, JSON.stringify(report));
        const reports = sidecar.logs.filter(logMatching(/new link-local addresses/));
        assertEquals(reports.length, 1, JSON.stringify(reports));
        // Not a line per frame: only the spoofed senders that were learned are ever named.
        const named = new Set(
          sidecar.logs.filter((line) => line !== report).flatMap((line) =>
            JSON.stringify(line).match(/169\.254\.1[0-7]\.\d+/g) ?? []
          ),
        );
        assert(named.size <= GUEST_LEARNING_RATE.burst + learned, [...named].join(", "));
      });

      await step(t, `idle routes are removed after ${IDLE_SECONDS} s`, logs, async () => {
        await waitFor("the idle routes to be removed", async () => {
          const learned = await learnedOn(pod.ns, veth);
          return learned.routes.length === 0 && learned.neighbours.length === 0 ? true : undefined;
        }, { timeoutMs: (IDLE_SECONDS + 10) * 1000, intervalMs: 200 });
        await sidecar.waitForLog(
          logMatching(new RegExp(`^removed the route back to ${GUEST.replaceAll(".", "\\.")}`)),
        );
      });

      await step(
        t,
        "the guest, which does not ask by ARP again, connects at once and is routed back again",
        logs,
        async () => {
          // Its MAC for 169.254.169.254 is cached: only its connection request tells the sidecar.
          await ipBatch(guest.ns, [
            `neigh replace ${METADATA_ADDRESS} lladdr ${sidecarMac} dev ${nic.guestInterface} nud permanent`,
          ]);
          const reply = await curl(guest.ns, "/v1/identity", { connectTimeoutSeconds: 1 });
          assertEquals(reply.status, 200);
          await sidecar.waitForLog(logMatching(/learned from its connection/));
          assertEquals((await learnedOn(pod.ns, veth)).routes, [GUEST]);
        },
      );

      await step(
        t,
        "a restart takes over at most the capacity of the routes an unbounded run left behind",
        logs,
        async () => {
          assertStoppedCleanly(await sidecar.stop());
          const left = Array.from({ length: 50 }, (_, i) => `169.254.200.${i + 1}`);
          await ipBatch(
            pod.ns,
            left.map((ip) => `route add ${ip}/32 dev ${veth} src ${METADATA_ADDRESS} scope link`),
          );
          sidecar = await startSidecar(lab, pod.ns, { identity, env });
          await sidecar.waitForLog(logMatching(/^removed 47 of the 51 routes back to guests/));
          const learned = await learnedOn(pod.ns, veth);
          assert(learned.routes.length <= GUEST_CAPACITY_PER_BRIDGE, JSON.stringify(learned));
          await waitUntilServed(guest.ns, identity);
        },
      );
    });
  },
);
