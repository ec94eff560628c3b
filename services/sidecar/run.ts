/**
 * The `run` subcommand: make 169.254.169.254 reachable for the VM inside the virt-launcher pod's
 * network namespace, then serve the metadata API on it (never on 0.0.0.0 or the pod IP).
 *
 * 1. 169.254.169.254/32 and fd00:ec2::254/128 on loopback, always: the server must bind the
 *    addresses before any bridge exists, and passt's sockets reach them there (IMDS_PASST only
 *    adds a log line). A pod with IPv6 turned off is served over IPv4 only.
 * 2. The ingress guard (datapath/ingress_guard.ts): only the VM and the pod itself reach the
 *    addresses; the hop limit (datapath/hop_limit.ts): replies do not outlive the guest.
 * 3. The HTTP server on 169.254.169.254:80 and [fd00:ec2::254]:80.
 * 4. The reconcile loop (datapath/reconcile.ts) on the real kernel (datapath/network_kernel.ts):
 *    for each VM bridge a veth pair, service by the one ARP responder thread through the
 *    bridge's VM ports, and, when IMDS_BRIDGE_INTERCEPT is on, layer-2 interception.
 * SIGTERM/SIGINT stop everything within a second. The veth pairs and interception stay in place,
 * so a restarted sidecar reuses them (guests keep their cached MAC, and bridge-binding guests'
 * packets to 169.254.169.254 never leave the pod meanwhile).
 */

import { METADATA_ADDRESS, METADATA_ADDRESS_V6 } from "../shared/contract.ts";
import { type Env, processEnv } from "../shared/settings.ts";
import { sleep } from "../shared/sleep.ts";
import { type MetadataServer, startMetadataServer } from "./api/server.ts";
import { listenForStopSignal, startSubcommand } from "./subcommand.ts";
import { ensureLoopbackAddress, ensureLoopbackAddressV6 } from "./datapath/attach.ts";
import { installHopLimit } from "./datapath/hop_limit.ts";
import { installIngressGuard } from "./datapath/ingress_guard.ts";
import { openNetworkKernel } from "./datapath/network_kernel.ts";
import { type NetworkRuntime, startNetwork } from "./datapath/reconcile.ts";

export const EXIT_SETUP_FAILED = 1;
/** The port guests connect to. */
export const METADATA_PORT = 80;
const STOP_DEADLINE_MS = 900;

/** Rejects after `ms`; for bounding shutdown steps. */
async function deadline(ms: number, what: string): Promise<never> {
  await sleep(ms);
  throw new Error(`${what} took longer than ${ms} ms`);
}

/** `main.ts run`: returns the exit code once SIGTERM/SIGINT has stopped everything. */
export async function run(args: string[], env: Env = processEnv): Promise<number> {
  // Before anything else, so a stop signal that arrives at any moment of the set-up (the pod
  // may be deleted right after it started) is handled like a later one: a clean stop, never
  // the default action that kills the process. The set-up below is synchronous, so a signal
  // that arrives during it is handled as soon as it is done.
  const stop = listenForStopSignal();
  const started = startSubcommand("run", args, env);
  if (typeof started === "number") return started;
  const { config, log } = started;
  if (config.listen.hostname !== METADATA_ADDRESS || config.listen.port !== METADATA_PORT) {
    log.warn(
      `run always serves on ${METADATA_ADDRESS}:${METADATA_PORT}; IMDS_LISTEN_ADDR is ignored`,
    );
  }

  const kernel = openNetworkKernel(log);
  let server: MetadataServer;
  let network: NetworkRuntime;
  try {
    // The address must exist before the server can bind it, whatever the binding mode.
    ensureLoopbackAddress(log);
    const ipv6 = ensureLoopbackAddressV6(log);
    // Before anything listens: only the VM and the pod itself may reach the address (a
    // neighbour routing 169.254.169.254 to the pod IP must not get this VM's tokens).
    installIngressGuard(log);
    installHopLimit(config.network.hopLimit, log);
    if (config.network.passt) log.info("passt guests reach the metadata address through loopback");
    server = startMetadataServer(config, log, {
      hostname: METADATA_ADDRESS,
      port: METADATA_PORT,
      alsoListen: ipv6 ? [{ hostname: METADATA_ADDRESS_V6, port: METADATA_PORT }] : [],
    });
    network = startNetwork({ network: config.network, logLevel: config.logLevel, log, kernel });
  } catch (error) {
    log.error(
      "could not set up the metadata network (the container needs NET_ADMIN, NET_RAW and NET_BIND_SERVICE)",
      {
        error,
      },
    );
    kernel.close();
    return EXIT_SETUP_FAILED;
  }

  const signal = await stop.signal;
  log.info("stopping", { signal });
  const stopped = Promise.all([network.stop(), server.shutdown()]);
  try {
    await Promise.race([stopped, deadline(STOP_DEADLINE_MS, "stopping")]);
  } catch (error) {
    log.warn("stopping forcefully", { error });
  }
  kernel.close();
  log.info("stopped");
  // Exit explicitly: a client holding a connection open must not keep the process alive.
  Deno.exit(0);
}
