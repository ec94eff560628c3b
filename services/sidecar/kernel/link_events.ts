/**
 * A wait for the namespace's link and IPv4 address changes (rtnetlink RTNLGRP_LINK and
 * RTNLGRP_IPV4_IFADDR events), which another caller can cut short: one netlink socket and
 * one eventfd, polled together by a nonblocking FFI poll() so the event loop stays free.
 */

import { EFD_CLOEXEC, EFD_NONBLOCK, errno, libc, pollForInput, syscallError } from "./libc.ts";
import { closeNetlink, receiveEvents } from "./netlink.ts";
import { openLinkEvents } from "./rtnetlink.ts";

export interface LinkEvents {
  /**
   * Resolves after the next link or address change (the events themselves are discarded:
   * callers list what they need), a `wake()`, or `timeoutMs`, whichever comes first.
   * One call at a time.
   */
  next(timeoutMs: number): Promise<void>;
  /** Ends the current (or the next) `next()` wait now. */
  wake(): void;
  /** Releases the socket and the eventfd; not while `next()` is pending. */
  close(): void;
}

export function watchLinkEvents(): LinkEvents {
  const events = openLinkEvents();
  const wakeFd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd < 0) {
    const code = errno();
    closeNetlink(events);
    throw syscallError("eventfd", code);
  }
  const pollfds = pollForInput([events.fd, wakeFd]);
  const counter = new Uint8Array(8);
  const one = new Uint8Array(8);
  one[0] = 1;
  return {
    async next(timeoutMs) {
      await libc().pollAsync(pollfds.bytes, pollfds.count, timeoutMs);
      if (pollfds.readable(0)) receiveEvents(events);
      if (pollfds.readable(1)) libc().read(wakeFd, counter, 8n);
    },
    wake() {
      libc().write(wakeFd, one, 8n);
    },
    close() {
      closeNetlink(events);
      libc().close(wakeFd);
    },
  };
}
