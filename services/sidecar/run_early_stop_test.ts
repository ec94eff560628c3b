/**
 * Lab: SIGTERM at any moment of the sidecar's start-up (the pod may be deleted right after it
 * started) stops it cleanly — exit 0 within the grace period, no process left — instead of the
 * signal's default action.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { netnsTest } from "../../testing/netns/harness.ts";
import { assertStoppedCleanly } from "../../testing/netns/expectations.ts";
import { step, withLab } from "../../testing/netns/lab_steps.ts";
import {
  type LogLine,
  logMatching,
  type Sidecar,
  startSidecar,
} from "../../testing/netns/sidecar_process.ts";
import { labIdentity } from "../../testing/netns/sidecar_process.ts";
import { addMultusNic, createGuest, createPod } from "../../testing/netns/topology.ts";

/** Moments of the start-up, each named by the log line the SIGTERM follows at once. */
const MOMENTS: { name: string; match: (line: LogLine) => boolean }[] = [
  { name: "its first log line", match: () => true },
  { name: "the ingress guard is installed", match: logMatching(/^only the VM and the pod/) },
  { name: "the metadata server listens", match: logMatching(/^metadata server listening/) },
  { name: "it found the VM's bridge", match: logMatching(/^found bridge /) },
  { name: "it attached to the bridge", match: logMatching(/^attached veth /) },
];

netnsTest("lab: SIGTERM right after start-up stops the sidecar cleanly", async (t) => {
  await withLab(async (lab) => {
    const pod = await createPod(lab);
    const guest = await createGuest(lab);
    // The VM's bridge exists before the sidecar starts, so it attaches during start-up.
    await addMultusNic(pod, guest, { network: "early" });
    let sidecar: Sidecar | undefined;
    for (const moment of MOMENTS) {
      await step(t, `SIGTERM right after ${moment.name}: exit 0`, () => sidecar, async () => {
        sidecar = await startSidecar(lab, pod.ns, { identity: labIdentity("vm-early-stop") });
        assertStoppedCleanly(await sidecar.stopOnLog(moment.match));
        assert(sidecar.logs.some(moment.match), `never got as far as ${moment.name}`);
        const stopping = sidecar.logs.find(logMatching(/^stopping$/));
        assertEquals(stopping?.signal, "SIGTERM", "the stop was not logged");
        assert(sidecar.logs.some(logMatching(/^stopped$/)), "no 'stopped' line");
      });
    }
  });
});
