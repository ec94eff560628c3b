/**
 * The lab's pods look like KubeVirt's: the names, MACs, addresses and sysctls
 * the sidecar has to cope with. No sidecar here; needs root like the lab.
 */
import { assert, assertEquals } from "../assert.ts";
import { netnsTest } from "./harness.ts";
import { mustRun, readSysctl } from "./command.ts";
import { createLab } from "./lab.ts";
import { type LinkInfo, links } from "./probes.ts";
import {
  addBridgeBindingNic,
  addMasqueradeNic,
  addMultusNic,
  createGuest,
  createPod,
  MASQUERADE,
  networkHash,
  POD_NETWORK,
} from "./topology.ts";

function byName(all: LinkInfo[], name: string): LinkInfo {
  const link = all.find((candidate) => candidate.name === name);
  assert(link, `no interface ${name}; have ${all.map((l) => l.name).join(", ")}`);
  return link;
}

Deno.test("Multus interface names are KubeVirt's: 11 hex digits of sha256(network name)", async () => {
  const hash = await networkHash("no-dhcp-net");
  assertEquals(hash.length, 11);
  assertEquals(hash, "9d3443338ec");
});

netnsTest(
  "lab topology: masquerade, bridge binding and Multus pods as KubeVirt wires them",
  async () => {
    const lab = createLab();
    try {
      const masqueradePod = await createPod(lab, "masq");
      const masqueradeGuest = await createGuest(lab, "masq-vm");
      await addMasqueradeNic(masqueradePod, masqueradeGuest);
      const masquerade = await links(masqueradePod.ns);
      assertEquals(byName(masquerade, "k6t-eth0").mac, MASQUERADE.bridgeMac);
      assertEquals(byName(masquerade, "k6t-eth0").addresses, [MASQUERADE.gateway]);
      assertEquals(byName(masquerade, "tap0").master, "k6t-eth0");
      assertEquals(byName(masquerade, "eth0").addresses, [POD_NETWORK.podIp]);
      assertEquals(await readSysctl(masqueradePod.ns, "net.ipv4.ip_forward"), "1");
      assertEquals(byName(await links(masqueradeGuest.ns), "eth0").addresses, [MASQUERADE.guestIp]);

      const bridgePod = await createPod(lab, "br");
      const bridgeGuest = await createGuest(lab, "br-vm");
      await addBridgeBindingNic(bridgePod, bridgeGuest);
      const bridged = await links(bridgePod.ns);
      assertEquals(byName(bridged, "eth0-nic").master, "k6t-eth0");
      assertEquals(byName(bridged, "tap0").master, "k6t-eth0");
      assertEquals(byName(bridged, "k6t-eth0").addresses, ["169.254.75.10"]);
      assertEquals(byName(bridged, "eth0").addresses, [POD_NETWORK.podIp]);
      assertEquals(byName(bridged, "eth0").operstate, "DOWN");
      assertEquals(await readSysctl(bridgePod.ns, "net.ipv4.conf.all.arp_ignore"), "1");
      const bridgeGuestEth0 = byName(await links(bridgeGuest.ns), "eth0");
      assertEquals(bridgeGuestEth0.mac, bridgePod.mac, "the guest carries the pod's MAC");
      assertEquals(bridgeGuestEth0.addresses, [POD_NETWORK.podIp]);

      const multusPod = await createPod(lab, "mul");
      const multusGuest = await createGuest(lab, "mul-vm");
      const nic = await addMultusNic(multusPod, multusGuest, { network: "no-dhcp-net" });
      const multus = await links(multusPod.ns);
      assertEquals(nic.bridge, "k6t-9d3443338ec");
      assertEquals(byName(multus, "9d3443338ec-nic").master, "k6t-9d3443338ec");
      assertEquals(byName(multus, "tap9d3443338ec").master, "k6t-9d3443338ec");
      assertEquals(byName(multus, "k6t-9d3443338ec").addresses, [], "no IPAM: no bridge address");
      assertEquals(byName(await links(multusGuest.ns), "eth0").addresses, []);
    } finally {
      await lab.cleanup();
    }
    const left = await mustRun(["ip", "netns", "list"]);
    assert(!left.includes(`lab-${lab.id}-`), `namespaces left behind: ${left}`);
  },
);
