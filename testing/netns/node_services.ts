/**
 * Stand-ins for what lives on the node side of a pod: the node's own metadata
 * service at 169.254.169.254 (what a cloud VM host has), which a guest in
 * bridge binding would reach if its requests left the pod.
 */
import { METADATA_ADDRESS } from "../../services/shared/contract.ts";
import { ipBatch } from "./command.ts";
import { startHttpResponder } from "./http_responder.ts";
import type { Lab } from "./lab.ts";

export interface DecoyService {
  /** What the decoy answers to every request. */
  body: string;
}

/** Puts 169.254.169.254 on the node's loopback and serves a recognisable body on port 80. */
export async function startDecoyMetadataService(lab: Lab, nodeNs: string): Promise<DecoyService> {
  const body = `{"source":"the node's own metadata service"}`;
  await ipBatch(nodeNs, [`address add ${METADATA_ADDRESS}/32 dev lo`]);
  await startHttpResponder(nodeNs, { hostname: METADATA_ADDRESS, body }, lab);
  return { body };
}
