import { assert, assertEquals, assertStringIncludes } from "../../../testing/assert.ts";
import { isBridgeBindingWithAddresses, type PortInfo, viewBridge } from "./bridge_intercept.ts";
import { inNamespace, ipBatch, mustRun, run } from "../../../testing/netns/command.ts";
import { netnsTest } from "../../../testing/netns/harness.ts";
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

const decoder = new TextDecoder();
const INTERCEPT = new URL("./bridge_intercept.ts", import.meta.url).href;
const RTNETLINK = new URL("../kernel/rtnetlink.ts", import.meta.url).href;
const GUARD = new URL("./ingress_guard.ts", import.meta.url).href;
const LOG = new URL("../../shared/log.ts", import.meta.url).href;

/** `argv`'s output; with `allowFailure`, whatever it printed even when it failed. */
async function sh(argv: string[], options: { allowFailure?: boolean } = {}): Promise<string> {
  return options.allowFailure ? (await run(argv)).stdout : await mustRun(argv);
}

/** Runs intercept.install / intercept.remove / installIngressGuard in a fresh process in `ns`. */
async function intercept(
  ns: string,
  action: "install" | "remove" | "guard",
  bridge = "k6t-eth0",
): Promise<Record<string, unknown> | null> {
  const calls = {
    install: "intercept.install(ctx)",
    remove: "(intercept.remove(ctx), null)",
    guard: "(installIngressGuard(log), null)",
  };
  const script = `
    import { createBridgeIntercept } from ${JSON.stringify(INTERCEPT)};
    import { installIngressGuard } from ${JSON.stringify(GUARD)};
    import { findLink } from ${JSON.stringify(RTNETLINK)};
    import { createLogger } from ${JSON.stringify(LOG)};
    const log = createLogger({ component: "test", sink: (line) => console.error(line) });
    const bridge = findLink(${JSON.stringify(bridge)});
    const sidecar = findLink("imds-eth0");
    const ctx = { bridge: bridge.name, bridgeIndex: bridge.index, vethBridgeSide: "imdb-eth0",
      vethSidecarSide: sidecar.name, vethSidecarIndex: sidecar.index, vethMac: sidecar.mac, log };
    const intercept = createBridgeIntercept();
    console.log(JSON.stringify(${calls[action]}));`;
  const out = await sh(inNamespace(ns, [Deno.execPath(), "eval", "--no-lock", script]));
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

interface Server {
  stop(): Promise<void>;
}

/** A one-line HTTP server in `ns` that answers every request with `body`. */
async function startServer(ns: string, hostname: string, body: string): Promise<Server> {
  const code = `Deno.serve({ hostname: ${JSON.stringify(hostname)}, port: 80, ` +
    `onListen() { console.log("listening") } }, () => new Response(${JSON.stringify(body)}));`;
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "eval", "--no-lock", code],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the ${body} server in ${ns} exited before listening`);
    seen += decoder.decode(value);
  }
  reader.releaseLock();
  return {
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
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

async function resetLeakCounter(node: string): Promise<void> {
  await sh(inNamespace(node, ["nft", "delete", "table", "netdev", "leak"]), { allowFailure: true });
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", node, "nft", "-f", "-"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`
table netdev leak {
  chain uplink {
    type filter hook ingress device "vethpod" priority 0;
    ip daddr 169.254.169.254 counter
    arp daddr ip 169.254.169.254 counter
  }
}
`));
  await writer.close();
  const output = await child.output();
  if (!output.success) throw new Error(`nft in ${node}: ${decoder.decode(output.stderr)}`);
}

/** Sets net.ipv4.conf.<key> in `ns` (the test's own set-up; no sysctl binary needed). */
async function setIpv4Conf(ns: string, key: string, value: number): Promise<void> {
  await sh(inNamespace(ns, ["sh", "-c", `echo ${value} > /proc/sys/net/ipv4/conf/${key}`]));
}

async function deleteNamespaces(names: string[]): Promise<void> {
  for (const name of names) await sh(["ip", "netns", "del", name], { allowFailure: true });
}

const POD_IP = "10.244.1.5";
const SIDECAR_MAC = "0e:1d:5a:00:00:01";

/**
 * A bridge-binding virt-launcher pod as KubeVirt wires it: the pod interface renamed eth0-nic
 * (learning off) in k6t-eth0 (169.254.75.10/32), a placeholder eth0 keeping the pod IP (a
 * down veth end: this kernel has no dummy links), tap0 to the guest, which owns the pod IP
 * and routes through the node; the sidecar's veth imdb-eth0/imds-eth0; strict rp_filter.
 * The node has its own "metadata service" on 169.254.169.254, as on a cloud.
 */
async function bridgeBindingPod(id: string) {
  const ns = { node: `ic-${id}-node`, pod: `ic-${id}-pod`, vm: `ic-${id}-vm` };
  for (const name of Object.values(ns)) {
    await sh(["ip", "netns", "add", name]);
    await ipBatch(name, ["link set lo up"]);
  }
  await ipBatch(ns.pod, [
    `link add eth0-nic type veth peer name vethpod netns ${ns.node}`,
    "link add k6t-eth0 type bridge",
    "link set eth0-nic master k6t-eth0",
    "link set eth0-nic type bridge_slave learning off",
    "address add 169.254.75.10/32 dev k6t-eth0",
    `link add tap0 type veth peer name eth0 netns ${ns.vm}`,
    "link set tap0 master k6t-eth0",
    "link add eth0 type veth peer name eth0-ph",
    `address add ${POD_IP}/24 dev eth0`,
    "link add imdb-eth0 type veth peer name imds-eth0",
    `link set imds-eth0 address ${SIDECAR_MAC}`,
    "link set imdb-eth0 address fe:00:00:00:00:01",
    "link set imdb-eth0 master k6t-eth0",
    "address add 169.254.169.254/32 dev imds-eth0",
    "link set eth0-nic up",
    "link set tap0 up",
    "link set k6t-eth0 up",
    "link set imdb-eth0 up",
    "link set imds-eth0 up",
  ]);
  await setIpv4Conf(ns.pod, "all/arp_ignore", 1);
  await setIpv4Conf(ns.pod, "all/rp_filter", 1);
  await ipBatch(ns.node, [
    "address add 10.244.1.1/24 dev vethpod",
    "address add 169.254.169.254/32 dev lo",
    "link set vethpod up",
  ]);
  await ipBatch(ns.vm, [
    "link set eth0 address 0a:58:0a:f4:01:05",
    `address add ${POD_IP}/24 dev eth0`,
    "link set eth0 up",
    "route add default via 10.244.1.1",
  ]);
  return ns;
}

netnsTest(
  "bridge binding: guest metadata traffic is answered in the pod and never reaches the node",
  async () => {
    const id = crypto.randomUUID().slice(0, 6);
    let ns: Awaited<ReturnType<typeof bridgeBindingPod>> | undefined;
    const servers: Server[] = [];
    try {
      ns = await bridgeBindingPod(id);
      servers.push(await startServer(ns.pod, "169.254.169.254", "answered by the pod"));
      servers.push(await startServer(ns.node, "0.0.0.0", "answered by the node"));
      await resetLeakCounter(ns.node);

      // Without interception the topology leaks, as on a real node.
      assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the node");
      assert((await leakedPackets(ns.node)) > 0, "the unprotected guest reached the node");

      const status = await intercept(ns.pod, "install");
      assertEquals(status, {
        bridge: "k6t-eth0",
        bridgeBinding: true,
        vmPorts: ["tap0"],
        guestAddresses: [POD_IP],
        changed: true,
      });

      const table = await sh(
        inNamespace(ns.pod, ["nft", "list", "table", "bridge", "kubevirt-imds"]),
      );
      const bridgeMac = JSON.parse(
        await sh(["ip", "-n", ns.pod, "-j", "link", "show", "k6t-eth0"]),
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

      const rules = (await sh(["ip", "-n", ns.pod, "rule", "list"])).trim().split("\n");
      assertEquals(rules[0], "0:\tfrom 169.254.169.254 lookup 169254");
      assertEquals(rules[1], "0:\tfrom all lookup local");
      assertEquals(rules.filter((rule) => rule.endsWith("lookup local")).length, 1);
      assertStringIncludes(
        await sh(["ip", "-n", ns.pod, "route", "show", "table", "169254"]),
        `${POD_IP} dev imds-eth0`,
      );

      await resetLeakCounter(ns.node);
      for (let i = 0; i < 3; i++) {
        assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");
      }
      // Even when the bridge has forgotten every address and floods.
      await sh(["bridge", "-n", ns.pod, "fdb", "flush", "dev", "imdb-eth0"], {
        allowFailure: true,
      });
      await sh(["ip", "-n", ns.pod, "neigh", "flush", "dev", "imds-eth0"]);
      assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");
      // A guest with an on-link route ARPs for the address: that stays inside too.
      await ipBatch(ns.vm, ["route add 169.254.169.254/32 dev eth0", "neigh flush dev eth0"]);
      assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");
      await ipBatch(ns.vm, ["route del 169.254.169.254/32 dev eth0"]);
      assertEquals(await leakedPackets(ns.node), 0);
      // The guest's other traffic still goes through the node.
      assertEquals(await curl(ns.vm, "http://10.244.1.1/"), "answered by the node");

      // A restarted sidecar installs the same thing again without duplicating anything.
      const again = await intercept(ns.pod, "install");
      assertEquals(again?.guestAddresses, [POD_IP]);
      assertEquals(
        await sh(inNamespace(ns.pod, ["nft", "list", "table", "bridge", "kubevirt-imds"])),
        table,
      );
      assertEquals((await sh(["ip", "-n", ns.pod, "rule", "list"])).trim().split("\n"), rules);

      // Removal takes out the table, the rule and the route, and leaves `local` in place.
      assertEquals(await intercept(ns.pod, "remove"), null);
      const gone = await sh(
        inNamespace(ns.pod, ["nft", "list", "table", "bridge", "kubevirt-imds"]),
        { allowFailure: true },
      );
      assertEquals(gone, "");
      const after = (await sh(["ip", "-n", ns.pod, "rule", "list"])).trim().split("\n");
      assertEquals(after[0], "0:\tfrom all lookup local");
      assert(!after.some((rule) => rule.includes("169254")));
      assertEquals((await sh(["ip", "-n", ns.pod, "route", "show", "table", "169254"])).trim(), "");
    } finally {
      for (const server of servers) await server.stop();
      if (ns) await deleteNamespaces(Object.values(ns));
    }
  },
);

netnsTest(
  "masquerade: the same table leaves the pod's routing of 169.254.169.254 working",
  async () => {
    const id = crypto.randomUUID().slice(0, 6);
    const ns = { pod: `ic-${id}-mpod`, vm: `ic-${id}-mvm` };
    const servers: Server[] = [];
    try {
      for (const name of Object.values(ns)) {
        await sh(["ip", "netns", "add", name]);
        await ipBatch(name, ["link set lo up"]);
      }
      await ipBatch(ns.pod, [
        "link add k6t-eth0 type bridge",
        "link set k6t-eth0 address 02:00:00:00:00:00",
        "address add 10.0.2.1/24 dev k6t-eth0",
        `link add tap0 type veth peer name eth0 netns ${ns.vm}`,
        "link set tap0 master k6t-eth0",
        "link add imdb-eth0 type veth peer name imds-eth0",
        `link set imds-eth0 address ${SIDECAR_MAC}`,
        "link set imdb-eth0 address fe:00:00:00:00:01",
        "link set imdb-eth0 master k6t-eth0",
        "address add 169.254.169.254/32 dev imds-eth0",
        "link set tap0 up",
        "link set k6t-eth0 up",
        "link set imdb-eth0 up",
        "link set imds-eth0 up",
      ]);
      await setIpv4Conf(ns.pod, "all/rp_filter", 1);
      await ipBatch(ns.vm, [
        "address add 10.0.2.2/24 dev eth0",
        "link set eth0 up",
        "route add default via 10.0.2.1",
      ]);
      servers.push(await startServer(ns.pod, "169.254.169.254", "answered by the pod"));
      assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");

      const status = await intercept(ns.pod, "install");
      assertEquals(status?.bridgeBinding, false);
      assertEquals(status?.guestAddresses, []);
      assertStringIncludes(
        await sh(inNamespace(ns.pod, ["nft", "list", "table", "bridge", "kubevirt-imds"])),
        'iifname "tap0" ether daddr != 02:00:00:00:00:00 ip daddr 169.254.169.254',
      );
      // No reply rule is needed: the guest's address is not local in the pod.
      assert(!(await sh(["ip", "-n", ns.pod, "rule", "list"])).includes("169254"));
      for (let i = 0; i < 3; i++) {
        assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");
      }
    } finally {
      for (const server of servers) await server.stop();
      await deleteNamespaces(Object.values(ns));
    }
  },
);

netnsTest(
  "ingress guard: a neighbour routing 169.254.169.254 to the pod gets no answer",
  async () => {
    const id = crypto.randomUUID().slice(0, 6);
    let ns: Awaited<ReturnType<typeof bridgeBindingPod>> | undefined;
    const servers: Server[] = [];
    try {
      ns = await bridgeBindingPod(id);
      // A second pod interface with an address of its own (the masquerade/passt/Multus case),
      // the metadata address also on the pod's loopback (as the sidecar has it), and a node
      // without a metadata service of its own, so whatever answers is the pod.
      await ipBatch(ns.pod, [
        `link add eth1 type veth peer name veth2 netns ${ns.node}`,
        "address add 10.99.0.2/24 dev eth1",
        "link set eth1 up",
        "address add 169.254.169.254/32 dev lo",
        // A way back to the node through the bridge, so that a request arriving there could
        // be answered (a pod on several networks may well have one).
        "route add 10.244.1.1/32 dev k6t-eth0",
      ]);
      await ipBatch(ns.node, [
        "address del 169.254.169.254/32 dev lo",
        "address add 10.99.0.1/24 dev veth2",
        "link set veth2 up",
      ]);
      servers.push(await startServer(ns.pod, "169.254.169.254", "answered by the pod"));
      const routes = {
        // Through the pod's own address on eth1.
        podAddress: "route replace 169.254.169.254/32 via 10.99.0.2",
        // Through the bridge's own address: frames to k6t-eth0's MAC enter from eth0-nic.
        bridgeAddress: "route replace 169.254.169.254/32 via 169.254.75.10 dev vethpod onlink",
      };
      for (const route of Object.values(routes)) {
        await ipBatch(ns.node, [route]);
        assertEquals(await curl(ns.node, "http://169.254.169.254/"), "answered by the pod");
      }

      assertEquals(await intercept(ns.pod, "guard"), null);
      assertStringIncludes(
        await sh(inNamespace(ns.pod, ["nft", "list", "table", "ip", "kubevirt-imds-guard"])),
        "ip daddr 169.254.169.254 drop",
      );
      for (const [name, route] of Object.entries(routes)) {
        await ipBatch(ns.node, [route]);
        assertEquals(await curl(ns.node, "http://169.254.169.254/", 1), "", `via ${name}`);
      }
      // The pod itself and the VM (once intercepted) are still answered.
      assertEquals(await curl(ns.pod, "http://169.254.169.254/"), "answered by the pod");
      await intercept(ns.pod, "install");
      assertEquals(await curl(ns.vm, "http://169.254.169.254/"), "answered by the pod");
    } finally {
      for (const server of servers) await server.stop();
      if (ns) await deleteNamespaces(Object.values(ns));
    }
  },
);

const NFT_STATE = new URL("../kernel/nftables_state.ts", import.meta.url).href;
const NETLINK = new URL("../kernel/netlink.ts", import.meta.url).href;

interface RepeatedInstall {
  /** [changed, whether the ruleset generation moved (= something was committed)] per call. */
  calls: Record<string, [boolean, boolean]>;
  /** `nft list table bridge kubevirt-imds` after each call. */
  listings: Record<string, string>;
  warnings: string[];
}

/**
 * intercept.install called again and again on ONE handle, as the sidecar's reconcile does:
 * first over a stale table an earlier run left, then with nothing changed, after an unrelated
 * nftables change, and after the table was deleted, a chain flushed, a set emptied.
 */
async function repeatedInstall(ns: string): Promise<RepeatedInstall> {
  const script = `
    import { createBridgeIntercept } from ${JSON.stringify(INTERCEPT)};
    import { rulesetGeneration } from ${JSON.stringify(NFT_STATE)};
    import { openNetlink, closeNetlink, NETLINK_NETFILTER } from ${JSON.stringify(NETLINK)};
    import { findLink } from ${JSON.stringify(RTNETLINK)};
    import { createLogger } from ${JSON.stringify(LOG)};
    const warnings = [];
    const log = createLogger({ component: "test", sink: (line, level) => {
      if (level === "warn") warnings.push(JSON.parse(line).msg);
    } });
    const bridge = findLink("k6t-eth0");
    const sidecar = findLink("imds-eth0");
    const ctx = { bridge: bridge.name, bridgeIndex: bridge.index, vethBridgeSide: "imdb-eth0",
      vethSidecarSide: sidecar.name, vethSidecarIndex: sidecar.index, vethMac: sidecar.mac, log };
    const intercept = createBridgeIntercept();
    const generation = () => {
      const sock = openNetlink(NETLINK_NETFILTER);
      try { return rulesetGeneration(sock); } finally { closeNetlink(sock); }
    };
    const nft = (...args) => {
      const out = new Deno.Command("nft", { args }).outputSync();
      if (!out.success) throw new Error("nft " + args.join(" ") + ": " + new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout);
    };
    const calls = {};
    const listings = {};
    const call = (name) => {
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
    console.log(JSON.stringify({ calls, listings, warnings }));`;
  const out = await sh(inNamespace(ns, [Deno.execPath(), "eval", "--no-lock", script]));
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

netnsTest(
  "intercept.install commits only when the table must change or was altered by someone else",
  async () => {
    const id = crypto.randomUUID().slice(0, 6);
    let ns: Awaited<ReturnType<typeof bridgeBindingPod>> | undefined;
    try {
      ns = await bridgeBindingPod(id);
      const { calls, listings, warnings } = await repeatedInstall(ns.pod);
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
    } finally {
      if (ns) await deleteNamespaces(Object.values(ns));
    }
  },
);
