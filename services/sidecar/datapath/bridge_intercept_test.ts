import { assert, assertEquals, assertStringIncludes } from "../../../testing/assert.ts";
import { isBridgeBindingWithAddresses, type PortInfo, viewBridge } from "./bridge_intercept.ts";
import { METADATA_ADDRESS } from "../../shared/contract.ts";
import { inNamespace, ipBatch, mustRun, run, sysctl } from "../../../testing/netns/command.ts";
import { netnsTest } from "../../../testing/netns/harness.ts";
import { startHttpResponder } from "../../../testing/netns/http_responder.ts";
import { runIntercept } from "../../../testing/netns/intercept_script.ts";
import type { Lab } from "../../../testing/netns/lab.ts";
import { withLab } from "../../../testing/netns/lab_steps.ts";
import {
  addBridgeBindingNic,
  addMasqueradeNic,
  addSidecarVeth,
  createGuest,
  createPod,
  POD_NETWORK,
} from "../../../testing/netns/topology.ts";
import type { Ipv4Address } from "../kernel/rtnetlink.ts";

// ---- how a bridge is read (no root needed) -------------------------------------------------

function link(index: number, name: string, master = 0): PortInfo {
  return { index, name, master };
}

Deno.test("bridge binding: the guest address is read from the placeholder, not the bridge", () => {
  const links = [
    link(1, "lo", 0),
    link(2, "eth0-nic", 5),
    link(3, "eth0"), // the placeholder, not a port
    link(4, "tap0", 5),
    link(5, "k6t-eth0", 0),
    link(6, "imdb-eth0", 5),
    link(7, "imds-eth0"),
  ];
  const addresses: Ipv4Address[] = [
    { index: 1, address: "127.0.0.1", prefix: 8 },
    { index: 1, address: "169.254.169.254", prefix: 32 },
    { index: 3, address: "10.244.0.7", prefix: 24 },
    { index: 5, address: "169.254.75.10", prefix: 32 },
    { index: 7, address: "169.254.169.254", prefix: 32 },
  ];
  assertEquals(viewBridge(links[4], links, addresses, "imdb-eth0"), {
    vmPorts: ["tap0"],
    uplinks: ["eth0-nic"],
    servesDhcp: true,
    guestAddresses: ["10.244.0.7"],
  });
});

Deno.test("masquerade: no uplink in the bridge, so no guest address is routed", () => {
  const links = [
    link(2, "eth0"), // the real pod interface, with the pod IP, outside the bridge
    link(4, "tap0", 5),
    link(5, "k6t-eth0", 0),
    link(6, "imdb-eth0", 5),
  ];
  const addresses = [{ index: 2, address: "10.244.0.7", prefix: 24 }];
  assertEquals(viewBridge(links[2], links, addresses, "imdb-eth0"), {
    vmPorts: ["tap0"],
    uplinks: [],
    servesDhcp: false,
    guestAddresses: [],
  });
});

Deno.test("Multus with hashed names: placeholder pod<hash>, tap<hash> not yet created", () => {
  const links = [
    link(2, "16477688c0e-nic", 5),
    link(3, "pod16477688c0e"),
    link(5, "k6t-16477688c0e", 0),
  ];
  const addresses = [
    { index: 3, address: "192.168.10.4", prefix: 24 },
    { index: 3, address: "169.254.10.4", prefix: 16 },
  ];
  assertEquals(viewBridge(links[2], links, addresses, "imdb-0a1b2c3d4e"), {
    vmPorts: ["tap16477688c0e"],
    uplinks: ["16477688c0e-nic"],
    servesDhcp: false,
    guestAddresses: ["192.168.10.4"],
  });
});

Deno.test("Multus without IPAM: the pod interface is in the bridge but no guest address exists", () => {
  // KubeVirt adds no DHCP server address and no placeholder when the network has no IPAM.
  const links = [
    link(2, "4c4bcb011ee-nic", 5),
    link(4, "tap4c4bcb011ee", 5),
    link(5, "k6t-4c4bcb011ee"),
  ];
  const addresses = [{ index: 1, address: "169.254.169.254" }];
  assertEquals(viewBridge(links[2], links, addresses, "imdb-0a1b2c3d4e"), {
    vmPorts: ["tap4c4bcb011ee"],
    uplinks: ["4c4bcb011ee-nic"],
    servesDhcp: false,
    guestAddresses: [],
  });
  assertEquals(isBridgeBindingWithAddresses(viewBridge(links[2], links, addresses, "x")), false);
});

Deno.test("bridge binding is recognised before KubeVirt has created the placeholder", () => {
  const view = { vmPorts: ["tap0"], uplinks: ["eth0-nic"], guestAddresses: [] };
  assertEquals(isBridgeBindingWithAddresses({ ...view, servesDhcp: true }), true);
  assertEquals(isBridgeBindingWithAddresses({ ...view, servesDhcp: false }), false);
  assertEquals(isBridgeBindingWithAddresses({ ...view, uplinks: [], servesDhcp: false }), false);
});

// ---- in network namespaces (root) ----------------------------------------------------------

/** `argv`'s output; with `allowFailure`, whatever it printed even when it failed. */
async function sh(argv: string[], options: { allowFailure?: boolean } = {}): Promise<string> {
  return options.allowFailure ? (await run(argv)).stdout : await mustRun(argv);
}

/** The body curl got, or "" when nothing answered within `seconds`. */
async function curl(ns: string, url: string, seconds = 3): Promise<string> {
  return await sh(inNamespace(ns, ["curl", "-s", "-m", String(seconds), url]), {
    allowFailure: true,
  });
}

/** Packets for 169.254.169.254 that reached the node over the pod's uplink (IPv4 or ARP). */
async function leakedPackets(node: string): Promise<number> {
  const listing = await sh(inNamespace(node, ["nft", "list", "table", "netdev", "leak"]));
  return [...listing.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function resetLeakCounter(node: string, uplink: string): Promise<void> {
  await sh(inNamespace(node, ["nft", "delete", "table", "netdev", "leak"]), { allowFailure: true });
  await mustRun(inNamespace(node, ["nft", "-f", "-"]), {
    stdin: `
table netdev leak {
  chain uplink {
    type filter hook ingress device "${uplink}" priority 0;
    ip daddr 169.254.169.254 counter
    arp daddr ip 169.254.169.254 counter
  }
}
`,
  });
}

const POD_IP = POD_NETWORK.podIp;
const SIDECAR_MAC = "0e:1d:5a:00:00:01";
const BRIDGE = "k6t-eth0";

/**
 * A bridge-binding virt-launcher pod as KubeVirt wires it (testing/netns/topology.ts: the pod
 * interface renamed eth0-nic in k6t-eth0, a placeholder eth0 keeping the pod IP, tap0 to the
 * guest, which owns the pod IP and routes through the node), the sidecar's veth
 * imdb-eth0/imds-eth0 on the bridge, and strict rp_filter.
 */
async function bridgeBindingPod(lab: Lab) {
  const pod = await createPod(lab);
  const guest = await createGuest(lab);
  await addBridgeBindingNic(pod, guest);
  const veth = await addSidecarVeth(pod, BRIDGE, { mac: SIDECAR_MAC });
  await sysctl(pod.ns, ["net.ipv4.conf.all.rp_filter=1"]);
  return { pod, guest, veth, onBridge: { bridge: BRIDGE, veth } };
}

netnsTest(
  "bridge binding: guest metadata traffic is answered in the pod and never reaches the node",
  async () => {
    await withLab(async (lab) => {
      const { pod, guest, onBridge } = await bridgeBindingPod(lab);
      // The node has its own "metadata service" on 169.254.169.254, as on a cloud.
      await ipBatch(pod.node, [`address add ${METADATA_ADDRESS}/32 dev lo`]);
      await startHttpResponder(
        pod.ns,
        { hostname: METADATA_ADDRESS, body: "answered by the pod" },
        lab,
      );
      await startHttpResponder(
        pod.node,
        { hostname: "0.0.0.0", body: "answered by the node" },
        lab,
      );
      await resetLeakCounter(pod.node, pod.nodeUplink);

      // Without interception the topology leaks, as on a real node.
      assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the node");
      assert((await leakedPackets(pod.node)) > 0, "the unprotected guest reached the node");

      const status = await runIntercept(pod.ns, { action: "install", ...onBridge });
      assertEquals(status, {
        bridge: "k6t-eth0",
        bridgeBinding: true,
        vmPorts: ["tap0"],
        guestAddresses: [POD_IP],
        changed: true,
      });

      const table = await sh(
        inNamespace(pod.ns, ["nft", "list", "table", "bridge", "kubevirt-imds"]),
      );
      const bridgeMac = JSON.parse(
        await sh(["ip", "-n", pod.ns, "-j", "link", "show", "k6t-eth0"]),
      )[0].address;
      for (
        const line of [
          'elements = { "imdb-eth0" }',
          'elements = { "tap0" }',
          "type filter hook prerouting priority dstnat; policy accept;",
          `iifname "tap0" ether daddr != ${bridgeMac} ip daddr 169.254.169.254 ether daddr set ${SIDECAR_MAC}`,
          "iifname @vm_ports ip daddr 169.254.169.254 oifname != @sidecar_ports drop",
          "iifname @vm_ports arp daddr ip 169.254.169.254 oifname != @sidecar_ports drop",
          "iifname @sidecar_ports oifname != @vm_ports drop",
          "oifname @sidecar_ports iifname != @vm_ports drop",
          `oifname "imdb-eth0" ether daddr ${SIDECAR_MAC} accept`,
          'oifname "imdb-eth0" drop',
        ]
      ) assertStringIncludes(table, line);

      const rules = (await sh(["ip", "-n", pod.ns, "rule", "list"])).trim().split("\n");
      assertEquals(rules[0], "0:\tfrom 169.254.169.254 lookup 169254");
      assertEquals(rules[1], "0:\tfrom all lookup local");
      assertEquals(rules.filter((rule) => rule.endsWith("lookup local")).length, 1);
      assertStringIncludes(
        await sh(["ip", "-n", pod.ns, "route", "show", "table", "169254"]),
        `${POD_IP} dev imds-eth0`,
      );

      await resetLeakCounter(pod.node, pod.nodeUplink);
      for (let i = 0; i < 3; i++) {
        assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");
      }
      // Even when the bridge has forgotten every address and floods.
      await sh(["bridge", "-n", pod.ns, "fdb", "flush", "dev", "imdb-eth0"], {
        allowFailure: true,
      });
      await sh(["ip", "-n", pod.ns, "neigh", "flush", "dev", "imds-eth0"]);
      assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");
      // A guest with an on-link route ARPs for the address: that stays inside too.
      await ipBatch(guest.ns, ["route add 169.254.169.254/32 dev eth0", "neigh flush dev eth0"]);
      assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");
      await ipBatch(guest.ns, ["route del 169.254.169.254/32 dev eth0"]);
      assertEquals(await leakedPackets(pod.node), 0);
      // The guest's other traffic still goes through the node.
      assertEquals(
        await curl(guest.ns, `http://${POD_NETWORK.gateway}/`),
        "answered by the node",
      );

      // A restarted sidecar installs the same thing again without duplicating anything.
      const again = await runIntercept(pod.ns, { action: "install", ...onBridge });
      assertEquals(again?.guestAddresses, [POD_IP]);
      assertEquals(
        await sh(inNamespace(pod.ns, ["nft", "list", "table", "bridge", "kubevirt-imds"])),
        table,
      );
      assertEquals((await sh(["ip", "-n", pod.ns, "rule", "list"])).trim().split("\n"), rules);

      // Removal takes out the table, the rule and the route, and leaves `local` in place.
      assertEquals(await runIntercept(pod.ns, { action: "remove", ...onBridge }), null);
      const gone = await sh(
        inNamespace(pod.ns, ["nft", "list", "table", "bridge", "kubevirt-imds"]),
        { allowFailure: true },
      );
      assertEquals(gone, "");
      const after = (await sh(["ip", "-n", pod.ns, "rule", "list"])).trim().split("\n");
      assertEquals(after[0], "0:\tfrom all lookup local");
      assert(!after.some((rule) => rule.includes("169254")));
      assertEquals((await sh(["ip", "-n", pod.ns, "route", "show", "table", "169254"])).trim(), "");
    });
  },
);

netnsTest(
  "masquerade: the same table leaves the pod's routing of 169.254.169.254 working",
  async () => {
    await withLab(async (lab) => {
      const pod = await createPod(lab);
      const guest = await createGuest(lab);
      await addMasqueradeNic(pod, guest);
      const veth = await addSidecarVeth(pod, BRIDGE, { mac: SIDECAR_MAC });
      await sysctl(pod.ns, ["net.ipv4.conf.all.rp_filter=1"]);
      await startHttpResponder(
        pod.ns,
        { hostname: METADATA_ADDRESS, body: "answered by the pod" },
        lab,
      );
      assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");

      const status = await runIntercept(pod.ns, { action: "install", bridge: BRIDGE, veth });
      assertEquals(status?.bridgeBinding, false);
      assertEquals(status?.guestAddresses, []);
      assertStringIncludes(
        await sh(inNamespace(pod.ns, ["nft", "list", "table", "bridge", "kubevirt-imds"])),
        'iifname "tap0" ether daddr != 02:00:00:00:00:00 ip daddr 169.254.169.254',
      );
      // No reply rule is needed: the guest's address is not local in the pod.
      assert(!(await sh(["ip", "-n", pod.ns, "rule", "list"])).includes("169254"));
      for (let i = 0; i < 3; i++) {
        assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");
      }
    });
  },
);

netnsTest(
  "ingress guard: a neighbour routing 169.254.169.254 to the pod gets no answer",
  async () => {
    await withLab(async (lab) => {
      const { pod, guest, onBridge } = await bridgeBindingPod(lab);
      // A second pod interface with an address of its own (the masquerade/passt/Multus case),
      // the metadata address also on the pod's loopback (as the sidecar has it), and a node
      // without a metadata service of its own, so whatever answers is the pod.
      await ipBatch(pod.ns, [
        `link add eth1 type veth peer name veth2 netns ${pod.node}`,
        "address add 10.99.0.2/24 dev eth1",
        "link set eth1 up",
        "address add 169.254.169.254/32 dev lo",
        // A way back to the node through the bridge, so that a request arriving there could
        // be answered (a pod on several networks may well have one).
        `route add ${POD_NETWORK.gateway}/32 dev k6t-eth0`,
      ]);
      await ipBatch(pod.node, [
        "address add 10.99.0.1/24 dev veth2",
        "link set veth2 up",
      ]);
      await startHttpResponder(
        pod.ns,
        { hostname: METADATA_ADDRESS, body: "answered by the pod" },
        lab,
      );
      const routes = {
        // Through the pod's own address on eth1.
        podAddress: "route replace 169.254.169.254/32 via 10.99.0.2",
        // Through the bridge's own address: frames to k6t-eth0's MAC enter from eth0-nic.
        bridgeAddress:
          `route replace 169.254.169.254/32 via 169.254.75.10 dev ${pod.nodeUplink} onlink`,
      };
      for (const route of Object.values(routes)) {
        await ipBatch(pod.node, [route]);
        assertEquals(await curl(pod.node, "http://169.254.169.254/"), "answered by the pod");
      }

      assertEquals(await runIntercept(pod.ns, { action: "guard" }), null);
      assertStringIncludes(
        await sh(inNamespace(pod.ns, ["nft", "list", "table", "ip", "kubevirt-imds-guard"])),
        "ip daddr 169.254.169.254 drop",
      );
      for (const [name, route] of Object.entries(routes)) {
        await ipBatch(pod.node, [route]);
        assertEquals(await curl(pod.node, "http://169.254.169.254/", 1), "", `via ${name}`);
      }
      // The pod itself and the VM (once intercepted) are still answered.
      assertEquals(await curl(pod.ns, "http://169.254.169.254/"), "answered by the pod");
      await runIntercept(pod.ns, { action: "install", ...onBridge });
      assertEquals(await curl(guest.ns, "http://169.254.169.254/"), "answered by the pod");
    });
  },
);

netnsTest(
  "intercept.install commits only when the table must change or was altered by someone else",
  async () => {
    await withLab(async (lab) => {
      const { pod, onBridge } = await bridgeBindingPod(lab);
      const { calls, listings, warnings } = await runIntercept(pod.ns, {
        action: "repeatedInstall",
        ...onBridge,
      });
      assertEquals(calls, {
        first: [true, true],
        again: [false, false],
        afterUnrelatedChange: [false, false],
        afterTableDeleted: [true, true],
        afterChainFlushed: [true, true],
        afterSetFlushed: [true, true],
        last: [false, false],
      }, "[changed, committed] per call");
      assert(!listings.first.includes("left-by-an-earlier-run"), "the first call replaces it");
      assertStringIncludes(listings.first, 'iifname "tap0"');
      for (const [name, listing] of Object.entries(listings)) {
        assertEquals(listing, listings.first, `the table after "${name}"`);
      }
      assertEquals(warnings.length, 3, `one warning per repair: ${warnings.join(" | ")}`);
      assertStringIncludes(warnings[0], "was changed or deleted by something else");
    });
  },
);
