/**
 * Stand-ins for what lives on the node side of a pod: the node's own metadata
 * service at 169.254.169.254 (what a cloud VM host has), which a guest in
 * bridge binding would reach if its requests left the pod.
 */
import { METADATA_ADDRESS } from "../../services/shared/contract.ts";
import { ipBatch, waitFor } from "./command.ts";
import type { Lab } from "./lab.ts";
import { curl } from "./probes.ts";

export interface DecoyService {
  /** What the decoy answers to every request. */
  body: string;
}

/** Puts 169.254.169.254 on the node's loopback and serves a recognisable body on port 80. */
export async function startDecoyMetadataService(lab: Lab, nodeNs: string): Promise<DecoyService> {
  const body = `{"source":"the node's own metadata service"}`;
  await ipBatch(nodeNs, [`address add ${METADATA_ADDRESS}/32 dev lo`]);
  const script = `Deno.serve({ hostname: "${METADATA_ADDRESS}", port: 80, onListen() {} }, ` +
    `() => new Response(${JSON.stringify(body)}));`;
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", nodeNs, Deno.execPath(), "eval", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  lab.defer(async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  });
  await waitFor("the node's decoy metadata service", async () => {
    const reply = await curl(nodeNs, "/", { connectTimeoutSeconds: 1 });
    return reply.body === body ? true : undefined;
  });
  return { body };
}
