/**
 * Answers ARP who-has requests for the metadata address from the VM, through one AF_PACKET
 * socket opened via FFI. Everything else is ignored: other addresses and operations (dropped in
 * the kernel by a BPF filter), our own frames, and requests that did not enter through a VM
 * (tap) port of a served bridge — such as a neighbour on a shared Multus network.
 *
 * The socket is served by a worker thread (arp_worker.ts) blocked in poll(), so replies do not
 * wait for the main thread. The main thread opens the socket (set-up errors surface here, e.g.
 * a missing NET_RAW capability), tells the worker which bridges to serve, and stops it through an
 * eventfd (closing a socket would not wake a pending poll).
 */

import { METADATA_ADDRESS_V6 } from "../../shared/contract.ts";
import type { LogLevel } from "../../shared/log.ts";
import { metadataTrafficFilter } from "../kernel/arp_syn_filter.ts";
import type { ArpTarget, FromWorker, LearningSettings, ToWorker } from "./arp_worker.ts";
import { arpWorkerUrl } from "./arp_worker_url.ts";
import { GUEST_IDLE_SECONDS_DEFAULT } from "./learned_guests.ts";
import {
  AF_PACKET,
  attachSocketFilter,
  check,
  EFD_CLOEXEC,
  errno,
  libc,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  sockaddrLl,
  syscallError,
} from "../kernel/libc.ts";
import { ETH_P_ALL } from "../kernel/ethernet.ts";

export type { ArpTarget };

export interface ArpResponder {
  /** Serve exactly these bridges from now on (sent to the worker only when it changed). */
  update(targets: ArpTarget[]): void;
  /** Rejects if the responder fails (its socket broke); never resolves otherwise. */
  failed: Promise<never>;
  stop(): Promise<void>;
}

/**
 * A nonblocking packet socket that receives, from every interface (`interfaceIndex` 0) or one,
 * only ARP who-has requests for `address`, TCP SYNs to it and IPv6 neighbour solicitations for
 * `address6` (kernel/arp_syn_filter.ts). ETH_P_ALL
 * taps frames as they enter a bridge port, before the bridge takes them, so the ingress port
 * is known.
 */
export function openArpRequestSocket(
  address: string,
  interfaceIndex = 0,
  address6: string | undefined = METADATA_ADDRESS_V6,
): number {
  // Protocol 0 at creation: the socket sees nothing until the filter is on and bind() names
  // the protocol, so no unfiltered frame is ever queued.
  const fd = check(
    "open packet socket",
    libc().socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
  );
  try {
    attachSocketFilter(fd, metadataTrafficFilter(address, address6), "packet socket");
    const sockaddr = sockaddrLl(interfaceIndex, ETH_P_ALL);
    if (libc().bind(fd, sockaddr, sockaddr.length) < 0) {
      throw syscallError("bind packet socket", errno());
    }
    return fd;
  } catch (error) {
    libc().close(fd);
    throw error;
  }
}

/**
 * Starts the responder thread. `learning` bounds the routes back to link-local guests in time
 * (by default, the sidecar's default IMDS_GUEST_ROUTE_IDLE_SECONDS).
 */
export function startArpResponder(
  address: string,
  logLevel: LogLevel,
  learning: LearningSettings = { guestRouteIdleMs: GUEST_IDLE_SECONDS_DEFAULT * 1000 },
): ArpResponder {
  const fd = openArpRequestSocket(address);
  const wakeFd = libc().eventfd(0, EFD_CLOEXEC);
  if (wakeFd < 0) {
    const code = errno();
    libc().close(fd);
    throw syscallError("eventfd", code);
  }
  const worker = new Worker(arpWorkerUrl(import.meta.url), { type: "module" });
  let fail = (_error: Error) => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // observed by whoever awaits `failed`
  let markExited = () => {};
  const exited = new Promise<void>((resolve) => (markExited = resolve));
  let running = true;

  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    if (event.data.type === "failed") fail(new Error(event.data.error));
    if (event.data.type === "exited") {
      running = false;
      markExited();
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    running = false;
    fail(new Error(`ARP responder thread failed: ${event.message}`));
    markExited();
  };

  const send = (message: ToWorker): void => {
    worker.postMessage(message);
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(wakeFd, one, 8n);
  };
  worker.postMessage({ type: "init", fd, wake: wakeFd, logLevel, learning } satisfies ToWorker);

  let lastTargets = "";
  let stopping: Promise<void> | undefined;
  return {
    failed,
    update(targets) {
      const key = JSON.stringify(targets);
      if (key === lastTargets || !running) return;
      lastTargets = key;
      send({ type: "targets", targets });
    },
    stop() {
      stopping ??= (async () => {
        if (running) send({ type: "exit" });
        await exited;
        worker.terminate();
        libc().close(wakeFd);
      })();
      return stopping;
    },
  };
}
