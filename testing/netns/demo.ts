/**
 * The link-local scenario end to end, in network namespaces (needs root): a
 * VM on a Multus secondary network with no DHCP configures 169.254.100.100/16,
 * asks http://169.254.169.254/v1/identity, and the sidecar's ARP responder
 * answers for the metadata address.
 *
 *   deno run -A testing/netns/demo.ts
 */
import { METADATA_ADDRESS } from "../../services/shared/contract.ts";
import { netnsUnavailableReason } from "./harness.ts";
import { inNamespace, mustRun, run, sleep, waitFor } from "./command.ts";
import { sidecarMacs } from "./expectations.ts";
import { createLab } from "./lab.ts";
import { labIdentity, type LogLine, logMatching, startSidecar } from "./sidecar_process.ts";
import { addMultusNic, configureGuestAddress, createGuest, createPod } from "./topology.ts";

const GUEST_ADDRESS = "169.254.100.100/16";

function heading(text: string): void {
  console.log(`\n== ${text}`);
}

function shown(argv: string[]): string {
  return "$ " + argv.map((arg) => (/[\s"]/.test(arg) ? `'${arg}'` : arg)).join(" ");
}

function describeLine(line: LogLine): string {
  return typeof line.msg === "string" ? line.msg : JSON.stringify(line);
}

/** Runs the scenario and prints what happens; returns a process exit code. */
export async function runLabDemo(): Promise<number> {
  const unavailable = netnsUnavailableReason();
  if (unavailable) {
    console.error(`the network namespace demo cannot run: ${unavailable}`);
    return 1;
  }
  const lab = createLab();
  try {
    heading("a virt-launcher pod and a VM, each in its own network namespace");
    const pod = await createPod(lab);
    const guest = await createGuest(lab);
    console.log(`pod: ${pod.ns}   node: ${pod.node}   VM: ${guest.ns}`);

    heading("the sidecar starts first (`main.ts run`); KubeVirt wires the VM afterwards");
    const identity = labIdentity("testvm-multus-nodhcp");
    const sidecar = await startSidecar(lab, pod.ns, {
      identity,
      env: { IMDS_LOG_LEVEL: "info" },
    });
    await sidecar.waitForLog(() => true);
    await sleep(500);
    const nic = await addMultusNic(pod, guest, { network: "no-dhcp-net" });
    console.log(
      `Multus network "no-dhcp-net" (no IPAM): bridge ${nic.bridge}, tap ${nic.tap}, ` +
        `VM NIC ${nic.guestInterface} ${nic.guestMac}`,
    );
    await waitFor("the sidecar to attach to the bridge", async () => {
      const macs = await sidecarMacs(pod.ns);
      return macs.length > 0 ? macs : undefined;
    });
    await sleep(300);

    heading("inside the VM: no IPv4 address, no DHCP — configure a link-local one");
    const addressCommand = ["ip", "addr", "add", GUEST_ADDRESS, "dev", nic.guestInterface];
    console.log(shown(addressCommand));
    await configureGuestAddress(guest, nic.guestInterface, GUEST_ADDRESS);
    const show = ["ip", "addr", "show", nic.guestInterface];
    console.log(shown(show));
    console.log((await mustRun(inNamespace(guest.ns, show))).trimEnd());

    heading("inside the VM: ask the metadata service");
    const curl = [
      "curl",
      "-v",
      "-sS",
      "-H",
      "Metadata: true",
      "--connect-timeout",
      "5",
      `http://${METADATA_ADDRESS}/v1/identity`,
    ];
    console.log(shown(curl));
    let result = await run(inNamespace(guest.ns, curl));
    for (let attempt = 1; result.code !== 0 && attempt < 3; attempt++) {
      await sleep(500);
      result = await run(inNamespace(guest.ns, curl));
    }
    const verbose = result.stderr.split("\n").filter((line) =>
      /^[<>*] ?\S/.test(line) && !/^\* (Expire|Closing|Connection #)/.test(line)
    );
    console.log(verbose.join("\n"));
    console.log(result.stdout);
    if (result.code !== 0) throw new Error(`curl failed (exit ${result.code})`);

    heading("the sidecar's log: its ARP responder answered for the metadata address");
    await sidecar.waitForLog(logMatching(/^ARP reply sent: /), 3000)
      .catch(() => undefined);
    const relevant = sidecar.logs.filter((line) =>
      /^ARP |bridge|attached|listening|waiting/i.test(describeLine(line)) ||
      (line.msg === "request" && line.path === "/v1/identity")
    );
    for (const line of relevant) {
      const extra = line.msg === "request" ? ` ${line.method} ${line.path} ${line.status}` : "";
      console.log(`${describeLine(line)}${extra}`);
    }
    return 0;
  } catch (error) {
    console.error(`demo failed: ${error instanceof Error ? error.message : error}`);
    return 1;
  } finally {
    heading("cleaning up the namespaces");
    await lab.cleanup();
    console.log("done");
  }
}

if (import.meta.main) Deno.exit(await runLabDemo());
