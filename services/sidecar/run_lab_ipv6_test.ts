/**
 * The lab for fd00:ec2::254 and the response hop limit: IPv6-only guests in the binding modes
 * that route the metadata address (masquerade, passt), the ip6 ingress guard, real cloud-init
 * reading its seed from the bracketed IPv6 URL, and a workload behind the guest that the
 * default hop limit keeps out. Needs root; skipped otherwise (never under CI=true).
 */
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { METADATA_ADDRESS_V6, NOCLOUD_SERIAL_V6 } from "../shared/contract.ts";
import { netnsTest } from "../../testing/netns/harness.ts";
import { inNamespace, ipBatch, mustRun, run, waitFor } from "../../testing/netns/command.ts";
import { assertServed, waitUntilServed } from "../../testing/netns/expectations.ts";
import { step, withLab } from "../../testing/netns/lab_steps.ts";
import {
  curl,
  type CurlOptions,
  neighbourMac,
  startCapture,
  waitForOk,
} from "../../testing/netns/probes.ts";
import { sidecarMacs } from "../../testing/netns/expectations.ts";
import { labIdentity, type Sidecar, startSidecar } from "../../testing/netns/sidecar_process.ts";
import {
  addBridgeBindingNic,
  addMasqueradeNic,
  addMultusNic,
  createGuest,
  createPod,
  networkHash,
} from "../../testing/netns/topology.ts";
import {
  addNestedWorkload,
  addPodIpv6,
  makeIpv6Only,
  MASQUERADE_V6,
  POD_NETWORK_V6,
} from "../../testing/netns/ipv6_guest.ts";
import { DEBIAN_PYTHON } from "../../testing/cloud_init.ts";

const V6: CurlOptions = { host: `[${METADATA_ADDRESS_V6}]` };

/** What a request from `ns` got: an HTTP status, or the reason curl gave up. */
async function outcome(ns: string, path: string, options: CurlOptions = {}): Promise<string> {
  try {
    return String((await curl(ns, path, { maxTimeSeconds: 3, ...options })).status);
  } catch (error) {
    return `no reply: ${(error as Error).message}`;
  }
}

netnsTest(
  "lab: IPv6-only masquerade guest — fd00:ec2::254 through its default route",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-v6-masquerade");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      await addMasqueradeNic(pod, guest);
      await makeIpv6Only(
        guest,
        "eth0",
        `${MASQUERADE_V6.guestIp}/${MASQUERADE_V6.prefix}`,
        MASQUERADE_V6.gateway,
      );

      await step(
        t,
        `the guest (${MASQUERADE_V6.guestIp} via ${MASQUERADE_V6.gateway}) gets identity, token and cloud-init files`,
        logs,
        async () => {
          assertMatch(await outcome(guest.ns, "/v1/identity"), /no reply/, "the guest has IPv4");
          await waitUntilServed(guest.ns, identity, V6);
          await assertServed(guest.ns, identity, V6);
          const line = await sidecar.waitForLog((line) =>
            line.msg === "request" && line.client === MASQUERADE_V6.guestIp
          );
          assertEquals(line.path !== undefined, true);
        },
      );

      await step(
        t,
        "Debian's cloud-init reads its seed from the serial's bracketed IPv6 URL",
        logs,
        async () => {
          const script = `
import json
from cloudinit import util, version
from cloudinit.sources import DataSourceNoCloud
fill = {}
found = DataSourceNoCloud.parse_cmdline_data("ds=nocloud", fill, ${
            JSON.stringify(NOCLOUD_SERIAL_V6)
          })
md, ud, vd = util.read_seeded(fill["seedfrom"], timeout=5, retries=2)
print(json.dumps({"version": version.version_string(), "found": found, "seedfrom": fill["seedfrom"],
                  "meta": md, "user": ud.decode() if isinstance(ud, bytes) else ud}))
`;
          const result = await run(inNamespace(guest.ns, [DEBIAN_PYTHON, "-c", script]));
          assertEquals(result.code, 0, result.stderr);
          const seen = JSON.parse(result.stdout);
          assertEquals(seen.found, true);
          assertEquals(seen.seedfrom, `http://[${METADATA_ADDRESS_V6}]/v1/`);
          assertEquals(seen.meta["local-hostname"], identity.vmName);
          assertEquals(seen.user, identity.userData);
          console.log(`cloud-init ${seen.version} read its seed from ${seen.seedfrom}`);
        },
      );

      await step(
        t,
        "a neighbour routing fd00:ec2::254 via the pod's IPv6 address gets nothing",
        logs,
        async () => {
          await addPodIpv6(pod);
          await ipBatch(pod.node, [
            `route add ${METADATA_ADDRESS_V6}/128 via ${POD_NETWORK_V6.podIp} dev ${pod.nodeUplink}`,
          ]);
          // The route works: the pod's own IPv6 address refuses a closed port (a TCP reset).
          assertMatch(
            await outcome(pod.node, "/", { host: `[${POD_NETWORK_V6.podIp}]:81` }),
            /Connection refused|Couldn't connect/,
          );
          assertMatch(await outcome(pod.node, "/v1/identity", V6), /no reply/);
        },
      );
    });
  },
);

netnsTest("lab: passt over IPv6 — the pod's own sockets reach fd00:ec2::254", async (t) => {
  await withLab(async (lab) => {
    const pod = await createPod(lab);
    const identity = labIdentity("vm-v6-passt");
    const sidecar = await startSidecar(lab, pod.ns, { identity, env: { IMDS_PASST: "true" } });
    await step(t, "identity, token and cloud-init files over IPv6", () => sidecar, async () => {
      await waitUntilServed(pod.ns, identity, V6);
      await assertServed(pod.ns, identity, V6);
    });
  });
});

netnsTest(
  "lab: hop limit — a workload behind the guest cannot fetch the token; with 2 it can",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-hop-limit");
      const running: { sidecar?: Sidecar } = {};
      const logs = () => running.sidecar;
      running.sidecar = await startSidecar(lab, pod.ns, { identity });
      await addMasqueradeNic(pod, guest);
      // Dual stack in the guest, so the nested workload is tried over both addresses.
      await ipBatch(guest.ns, [
        `address add ${MASQUERADE_V6.guestIp}/${MASQUERADE_V6.prefix} dev eth0 nodad`,
        `route add ::/0 via ${MASQUERADE_V6.gateway} dev eth0`,
      ]);
      const nested = await addNestedWorkload(guest, "eth0");

      await step(
        t,
        "by default (1) the guest gets the token over IPv4 and IPv6, the nested workload over neither",
        logs,
        async () => {
          await waitUntilServed(guest.ns, identity);
          await waitUntilServed(guest.ns, identity, V6);
          for (const options of [{}, V6]) {
            assertEquals(await outcome(guest.ns, "/v1/token", options), "200");
            assertMatch(await outcome(nested.ns, "/v1/token", options), /no reply/);
          }
          // The workload does reach the pod through the guest (a closed port answers with a
          // reset): only the service's replies stop at the guest.
          assertMatch(
            await outcome(nested.ns, "/", { host: "10.0.2.1:81" }),
            /Connection refused|Couldn't connect/,
          );
        },
      );

      await step(t, "with IMDS_HOP_LIMIT=2 the nested workload is answered", logs, async () => {
        await running.sidecar!.stop();
        running.sidecar = await startSidecar(lab, pod.ns, {
          identity,
          env: { IMDS_HOP_LIMIT: "2" },
        });
        await waitUntilServed(guest.ns, identity);
        for (const options of [{}, V6]) {
          assertEquals(await outcome(nested.ns, "/v1/token", options), "200");
        }
      });

      await step(t, "with IMDS_HOP_LIMIT=0 the tables are gone", logs, async () => {
        await running.sidecar!.stop();
        running.sidecar = await startSidecar(lab, pod.ns, {
          identity,
          env: { IMDS_HOP_LIMIT: "0" },
        });
        await waitUntilServed(guest.ns, identity);
        const tables = await run(inNamespace(pod.ns, ["nft", "list", "tables"]));
        assert(!tables.stdout.includes("kubevirt-imds-hop-limit"), tables.stdout);
        assertEquals(await outcome(nested.ns, "/v1/token"), "200");
      });
    });
  },
);

/** The interface's link-local address once duplicate address detection is over. */
async function linkLocalAddress(ns: string, device: string): Promise<string> {
  return await waitFor(`a link-local address on ${device} in ${ns}`, async () => {
    const shown = JSON.parse(
      await mustRun([
        "ip",
        "-n",
        ns,
        "-j",
        "-6",
        "address",
        "show",
        "dev",
        device,
        "scope",
        "link",
      ]),
    ) as Array<{ addr_info: Array<{ local: string; tentative?: boolean }> }>;
    return shown[0]?.addr_info.find((address) => !address.tentative)?.local;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}

netnsTest(
  "lab: IPv6-only Multus network without a router — neighbour advertisements from the VM port only",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-v6-multus");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      const network = "nodhcp-v6";
      const nic = await addMultusNic(pod, guest, { network });
      const uplink = `${await networkHash(network)}-nic`;
      const guestAddress = await linkLocalAddress(guest.ns, nic.guestInterface);
      // Only a link-local address: the metadata address is on-link, as for 169.254.169.254.
      await ipBatch(guest.ns, [`route add ${METADATA_ADDRESS_V6}/128 dev ${nic.guestInterface}`]);

      await step(
        t,
        "the guest asking from its link-local address gets identity, token and cloud-init files",
        logs,
        async () => {
          const capture = await startCapture(
            pod.ns,
            uplink,
            `ip6 and (host ${METADATA_ADDRESS_V6} or host fe80::a9fe:a9fe or icmp6)`,
          );
          const served = await (async () => {
            await waitUntilServed(guest.ns, identity, V6);
            await assertServed(guest.ns, identity, V6);
          })().then(() => undefined, (error) => error);
          const packets = await capture.stop();
          if (served) throw served;
          await sidecar.waitForLog((line) =>
            line.msg === "request" && line.client === guestAddress
          );
          await sidecar.waitForLog((line) =>
            String(line.msg).startsWith(`neighbour solicitation for ${METADATA_ADDRESS_V6}`) &&
            line.client === guestAddress
          );
          const macs = await sidecarMacs(pod.ns);
          assertEquals(
            await neighbourMac(guest.ns, METADATA_ADDRESS_V6, nic.guestInterface),
            macs[0],
            "the guest resolved fd00:ec2::254 to the sidecar's veth",
          );
          assertEquals(
            packets.filter((line) =>
              line.includes(METADATA_ADDRESS_V6) || line.includes("fe80::a9fe:a9fe") ||
              macs.some((mac) => line.includes(mac))
            ),
            [],
            "neighbour discovery or traffic for the metadata address crossed the pod's uplink",
          );
        },
      );

      await step(t, "solicitations for other addresses get no answer", logs, async () => {
        const macs = await sidecarMacs(pod.ns);
        for (const other of ["fd00:ec2::253", "fe80::a9fe:a9fd"]) {
          await ipBatch(guest.ns, [`route replace ${other}/128 dev ${nic.guestInterface}`]);
          assertMatch(
            await outcome(guest.ns, "/", { host: `[${other}]`, connectTimeoutSeconds: 1 }),
            /no reply/,
          );
          const mac = await neighbourMac(guest.ns, other, nic.guestInterface);
          assert(mac === undefined || !macs.includes(mac), `the sidecar answered for ${other}`);
        }
      });

      await step(
        t,
        "a host on the secondary network gets no advertisement and no answer",
        logs,
        async () => {
          const bridge = nic.networkBridge!;
          await linkLocalAddress(pod.node, bridge);
          await ipBatch(pod.node, [`route add ${METADATA_ADDRESS_V6}/128 dev ${bridge}`]);
          assertMatch(
            await outcome(pod.node, "/v1/identity", { ...V6, connectTimeoutSeconds: 2 }),
            /no reply/,
          );
          const mac = await neighbourMac(pod.node, METADATA_ADDRESS_V6, bridge);
          assert(
            mac === undefined || !(await sidecarMacs(pod.ns)).includes(mac),
            "the sidecar advertised fd00:ec2::254 to the secondary network",
          );
          // The guest is still served.
          await waitForOk(guest.ns, "/v1/token", V6);
        },
      );
    });
  },
);

netnsTest(
  "lab: IPv6 bridge binding — the guest's requests to fd00:ec2::254 never leave the pod",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      await addBridgeBindingNic(pod, guest);
      // The pod's IPv6 address as KubeVirt leaves it: on the placeholder that kept eth0's name;
      // the guest owns it and routes through the cluster gateway.
      const { podIp, gateway, prefix } = POD_NETWORK_V6;
      await ipBatch(pod.node, [`address add ${gateway}/${prefix} dev ${pod.nodeUplink} nodad`]);
      await ipBatch(pod.ns, [`address add ${podIp}/${prefix} dev eth0 nodad`]);
      await makeIpv6Only(guest, "eth0", `${podIp}/${prefix}`, gateway);
      const identity = labIdentity("vm-v6-bridge");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;

      await step(
        t,
        `the guest (${podIp} via ${gateway}) is answered by the sidecar, and nothing crosses the uplink`,
        logs,
        async () => {
          await waitUntilServed(guest.ns, identity, V6);
          const capture = await startCapture(pod.ns, pod.uplink, `ip6 host ${METADATA_ADDRESS_V6}`);
          const served = await assertServed(guest.ns, identity, V6).then(() => undefined, (e) => e);
          const packets = await capture.stop();
          if (served) throw served;
          assertEquals(packets, [], "packets to or from fd00:ec2::254 crossed the pod's uplink");
          await sidecar.waitForLog((line) => line.msg === "request" && line.client === podIp);
        },
      );

      await step(t, "the node cannot reach fd00:ec2::254 through the pod", logs, async () => {
        await ipBatch(pod.node, [
          `route add ${METADATA_ADDRESS_V6}/128 via ${podIp} dev ${pod.nodeUplink}`,
        ]);
        assertMatch(
          await outcome(pod.node, "/v1/identity", { ...V6, connectTimeoutSeconds: 2 }),
          /no reply/,
        );
      });
    });
  },
);

netnsTest(
  "lab: several NICs over IPv6 — masquerade and a link-local Multus network both serve fd00:ec2::254",
  async (t) => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      const identity = labIdentity("vm-v6-multi");
      const sidecar = await startSidecar(lab, pod.ns, { identity });
      const logs = () => sidecar;
      await addMasqueradeNic(pod, guest, { guestInterface: "eth0" });
      await makeIpv6Only(
        guest,
        "eth0",
        `${MASQUERADE_V6.guestIp}/${MASQUERADE_V6.prefix}`,
        MASQUERADE_V6.gateway,
      );
      const multus = await addMultusNic(pod, guest, {
        network: "storage-v6",
        guestInterface: "eth1",
        ordinal: 1,
      });
      const linkLocal = await linkLocalAddress(guest.ns, multus.guestInterface);
      // A socket bound to eth1 uses this route, from the link-local address (without the hint
      // the guest would pick its global fd10:0:2::2 and get the answer on eth0); one bound to
      // eth0 uses its default route.
      await ipBatch(guest.ns, [
        `route add ${METADATA_ADDRESS_V6}/128 dev eth1 src ${linkLocal}`,
      ]);

      const clients = { eth0: MASQUERADE_V6.guestIp, eth1: linkLocal };
      for (const [nic, client] of Object.entries(clients)) {
        await step(t, `the guest is served through ${nic} (as ${client})`, logs, async () => {
          await waitUntilServed(guest.ns, identity, { ...V6, interface: nic });
          await assertServed(guest.ns, identity, { ...V6, interface: nic });
          await sidecar.waitForLog((line) => line.msg === "request" && line.client === client);
        });
      }
    });
  },
);
