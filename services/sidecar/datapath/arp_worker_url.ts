/**
 * Where the ARP responder's worker module is. In the sources it is
 * arp_worker.ts beside arp_responder.ts; in the sidecar's bundle
 * (services/sidecar/bundle.ts) it is a self-contained file named
 * ARP_WORKER_BUNDLED beside the chunk that holds arp_responder's code.
 */

export const ARP_WORKER_BUNDLED = "arp_worker.js";

/** The worker's URL, for the module at `moduleUrl` (arp_responder's import.meta.url). */
export function arpWorkerUrl(moduleUrl: string): URL {
  return new URL(
    moduleUrl.endsWith(".ts") ? "./arp_worker.ts" : `./${ARP_WORKER_BUNDLED}`,
    moduleUrl,
  );
}
