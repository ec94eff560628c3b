/**
 * What a guest must see from the metadata service, written once and checked
 * in every binding mode.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { arping, curl, type CurlOptions, metadataLinks, waitForOk } from "./probes.ts";
import type { StopResult, VmIdentity } from "./sidecar_process.ts";
import { type Pod, POD_NETWORK } from "./topology.ts";
import { ipBatch } from "./command.ts";
import { METADATA_ADDRESS } from "../../services/shared/contract.ts";

/** A stop after SIGTERM: exit 0 within the grace period, no process left in the pod. */
export function assertStoppedCleanly(stopped: StopResult): void {
  assert(stopped.exitMs !== undefined, "the sidecar was still running 1.5 s after SIGTERM");
  assertEquals({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null });
  assertEquals(stopped.strayPids, [], "processes left in the pod namespace");
}

/** Waits until the sidecar (not anything else answering on 169.254.169.254) serves `ns`. */
export async function waitUntilServed(
  ns: string,
  identity: VmIdentity,
  options: CurlOptions = {},
): Promise<void> {
  await waitForOk(ns, "/v1/identity", {
    ...options,
    accept: (reply) => reply.body.includes(`"vmName":"${identity.vmName}"`),
  });
}

/** Identity, token and the cloud-init files, as a guest (or passt, from the pod) asks for them. */
export async function assertServed(
  ns: string,
  identity: VmIdentity,
  options: CurlOptions = {},
): Promise<void> {
  const who = await curl(ns, "/v1/identity", options);
  assertEquals(who.status, 200, `/v1/identity answered ${who.status}: ${who.body}`);
  assertMatch(who.contentType, /application\/json/);
  const body = JSON.parse(who.body);
  assertEquals(
    {
      namespace: body.namespace,
      vmName: body.vmName,
      serviceAccountName: body.serviceAccountName,
      podName: body.podName,
      vmiUid: body.vmiUid,
    },
    {
      namespace: identity.namespace,
      vmName: identity.vmName,
      serviceAccountName: identity.serviceAccountName,
      podName: identity.podName,
      vmiUid: identity.vmiUid,
    },
  );

  const token = await curl(ns, "/v1/token", options);
  assertEquals(token.status, 200, `/v1/token answered ${token.status}: ${token.body}`);
  assertEquals(JSON.parse(token.body).token, identity.token);

  const refused = await curl(ns, "/v1/token", { ...options, metadataHeader: false });
  assertEquals(refused.status, 400, "a token request without the Metadata header is refused");

  // cloud-init sends no Metadata header.
  const files = { ...options, metadataHeader: false };
  const metaData = await curl(ns, "/v1/meta-data", files);
  assertEquals(metaData.status, 200);
  assertMatch(metaData.body, new RegExp(`^instance-id: \\S+$`, "m"));
  assertMatch(metaData.body, new RegExp(`^local-hostname: ${identity.vmName}$`, "m"));
  const userData = await curl(ns, "/v1/user-data", files);
  assertEquals([userData.status, userData.body], [200, identity.userData]);
  const networkConfig = await curl(ns, "/v1/network-config", files);
  assertEquals([networkConfig.status, networkConfig.body], [200, identity.networkConfig]);
}

/** MACs of the sidecar's own interfaces that carry 169.254.169.254 (not loopback). */
export async function sidecarMacs(podNs: string): Promise<string[]> {
  return (await metadataLinks(podNs)).filter((link) => link.name !== "lo").map((link) => link.mac);
}

/**
 * ARP requests from the guest for addresses other than 169.254.169.254 get no
 * reply carrying one of the sidecar's MACs.
 */
export async function assertNoSidecarArpReplies(
  guestNs: string,
  guestInterface: string,
  targets: string[],
  macs: string[],
): Promise<void> {
  assert(macs.length > 0, "the sidecar has no interface carrying 169.254.169.254");
  const results = await Promise.all(
    targets.map(async (target) => ({
      target,
      replies: await arping(guestNs, guestInterface, target),
    })),
  );
  for (const { target, replies } of results) {
    const fromSidecar = replies.filter((reply) => macs.includes(reply.mac));
    assertEquals(
      fromSidecar,
      [],
      `ARP for ${target} was answered with the sidecar's MAC (${macs.join(", ")})`,
    );
  }
}

/** The guest's ARP request for 169.254.169.254 is answered with one of the sidecar's MACs. */
export async function assertSidecarAnswersArp(
  guestNs: string,
  guestInterface: string,
  macs: string[],
): Promise<void> {
  const replies = await arping(guestNs, guestInterface, METADATA_ADDRESS);
  assert(
    replies.some((reply) => macs.includes(reply.mac)),
    `no ARP reply for ${METADATA_ADDRESS} with the sidecar's MAC (${macs.join(", ")}); ` +
      `replies: ${JSON.stringify(replies)}`,
  );
}

/** Whether a request from `ns` to `host` gets the VM's identity (false: refused, timed out or another answer). */
async function identityAnsweredFrom(
  ns: string,
  host: string,
  identity: VmIdentity,
): Promise<string | undefined> {
  try {
    const reply = await curl(ns, "/v1/identity", { host, connectTimeoutSeconds: 1 });
    return reply.body.includes(identity.vmName) ? reply.body : undefined;
  } catch {
    return undefined;
  }
}

/** From the node (the cluster network), http://<pod IP>/ does not reach the API. */
export async function assertPodIpUnreachable(pod: Pod, identity: VmIdentity): Promise<void> {
  const body = await identityAnsweredFrom(pod.node, POD_NETWORK.podIp, identity);
  assertEquals(body, undefined, `the metadata API answered on the pod IP ${POD_NETWORK.podIp}`);
}

/**
 * A neighbour on the pod network that routes 169.254.169.254 via the pod IP
 * (anyone on a flat layer-2 pod network can) does not reach the API.
 */
export async function assertNotRoutableThroughPod(
  pod: Pod,
  identity: VmIdentity,
  { via = POD_NETWORK.podIp, onlink = false }: { via?: string; onlink?: boolean } = {},
): Promise<void> {
  const route = `route replace ${METADATA_ADDRESS}/32 via ${via} dev ${pod.nodeUplink}`;
  await ipBatch(pod.node, [onlink ? `${route} onlink` : route]);
  try {
    const body = await identityAnsweredFrom(pod.node, METADATA_ADDRESS, identity);
    assertEquals(
      body,
      undefined,
      `the metadata API answered the node's request for ${METADATA_ADDRESS} routed via ${via}`,
    );
  } finally {
    await ipBatch(pod.node, [`route del ${METADATA_ADDRESS}/32`]);
  }
}

/**
 * Another host on a Multus secondary network (here: an address on the
 * network's node-side bridge) neither gets an ARP answer for 169.254.169.254
 * from the sidecar nor reaches the API.
 */
export async function assertHiddenFromNetworkNeighbours(
  pod: Pod,
  networkBridge: string,
  identity: VmIdentity,
  macs: string[],
): Promise<void> {
  const neighbour = "169.254.50.50";
  await ipBatch(pod.node, [`address add ${neighbour}/16 dev ${networkBridge}`]);
  try {
    const [replies, body] = await Promise.all([
      arping(pod.node, networkBridge, METADATA_ADDRESS),
      identityAnsweredFrom(pod.node, METADATA_ADDRESS, identity),
    ]);
    assertEquals(
      replies.filter((reply) => macs.includes(reply.mac)),
      [],
      "the sidecar answered ARP from a neighbour on the secondary network",
    );
    assertEquals(body, undefined, "a neighbour on the secondary network reached the API");
  } finally {
    await ipBatch(pod.node, [`address del ${neighbour}/16 dev ${networkBridge}`]);
  }
}
