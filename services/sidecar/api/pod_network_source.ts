/**
 * The network configuration generated from the pod's networks, as the
 * `/v1/network-config` endpoint serves it: network-status read from its
 * downward API file (rewritten by the kubelet once Multus has annotated the
 * pod), parsed and translated, with what to say while it is not there yet.
 */

import { MULTUS } from "../../shared/contract.ts";
import { errorAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { ClientMacLookup } from "./client_mac.ts";
import { documentReader } from "./cloud_init_files.ts";
import type { IpSubnet } from "./ip_address.ts";
import { parseNetworkStatus } from "./network_status.ts";
import { networkConfigV2, planGuestNics } from "./pod_network_config.ts";
import { NO_STORE_TEXT_HEADERS, RETRY_AFTER_SECONDS } from "./answer_headers.ts";

export interface PodNetworkSettings {
  statusFile: string;
  subnets: readonly IpSubnet[];
  expectedInterfaces: readonly string[];
}

/**
 * How long after start-up a missing or incomplete network-status is "not yet"
 * (503 with Retry-After); after that the answer says what is missing, without
 * Retry-After, and cloud-init gives up on the file after its own retries.
 */
export const NETWORK_STATUS_WAIT_SECONDS = 120;
const decoder = new TextDecoder();

/** The generated document, or the error response that says why there is none. */
export type GeneratedNetworkConfig = { document: string } | { refusal: PlainResponse };

/** Serves a GeneratedNetworkConfig as /v1/network-config does. */
export function networkConfigResponse(result: GeneratedNetworkConfig): PlainResponse {
  if ("refusal" in result) return result.refusal;
  return { status: 200, headers: NO_STORE_TEXT_HEADERS, body: result.document };
}

export function podNetworkConfigSource(
  settings: PodNetworkSettings,
  log: Logger,
  clientMac: ClientMacLookup = () => undefined,
  startedAt = Date.now(),
): (client: string) => GeneratedNetworkConfig {
  const read = documentReader({ kind: "file", path: settings.statusFile });
  let logged = "";
  const logOnce = (level: "warn" | "error", message: string, reason: string): void => {
    if (logged === message + reason) return;
    logged = message + reason;
    log[level](message, { reason, annotation: MULTUS.networkStatusAnnotation });
  };
  const notYet = (reason: string): GeneratedNetworkConfig => ({ refusal: notYetResponse(reason) });
  const invalid = (reason: string): GeneratedNetworkConfig => {
    logOnce("error", "network-status refused", reason);
    return {
      refusal: errorAnswer(
        503,
        "network_status_invalid",
        `the pod's ${MULTUS.networkStatusAnnotation} annotation cannot be used: ${reason}`,
      ),
    };
  };
  const notYetResponse = (reason: string): PlainResponse => {
    const waited = (Date.now() - startedAt) / 1000;
    if (waited < NETWORK_STATUS_WAIT_SECONDS) {
      return errorAnswer(
        503,
        "network_status_pending",
        `the network configuration is generated from the pod's ${MULTUS.networkStatusAnnotation} annotation, and ${reason}; retry shortly`,
        { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
      );
    }
    logOnce("error", "network configuration cannot be generated", reason);
    return errorAnswer(
      503,
      "network_status_missing",
      `the network configuration is generated from the pod's ${MULTUS.networkStatusAnnotation} annotation, and ${reason} ${NETWORK_STATUS_WAIT_SECONDS} s after the metadata service started; Multus writes that annotation (is it installed, and did it attach every network?)`,
    );
  };
  return (client) => {
    const file = read();
    if ("unavailable" in file) return notYet(`its file cannot be read (${file.unavailable})`);
    const text = decoder.decode(file.bytes).trim();
    if (text === "") return notYet("the pod has no such annotation yet");
    const parsed = parseNetworkStatus(text);
    if ("error" in parsed) return invalid(parsed.error);
    const secondaryMacs = new Set(
      parsed.interfaces.filter((s) => !s.default && s.mac).map((s) => s.mac),
    );
    const mac = clientMac(client);
    const plan = planGuestNics(parsed.interfaces, {
      subnets: settings.subnets,
      expectedInterfaces: settings.expectedInterfaces,
      // A guest asking over a NIC that is no secondary one asks over the pod network's NIC.
      primaryMac: mac !== undefined && !secondaryMacs.has(mac) ? mac : undefined,
    });
    if ("pending" in plan) return notYet(plan.pending);
    if ("error" in plan) return invalid(plan.error);
    return { document: networkConfigV2(plan.nics) };
  };
}
