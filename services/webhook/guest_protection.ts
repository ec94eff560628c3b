/**
 * The per-VM annotations that decide how far the metadata service's answers reach and which
 * address cloud-init is pointed at: the response hop limit, whether session tokens are
 * required, and the NoCloud seed address (IPv4 or IPv6). Odd values never fail a request:
 * the chart's default is used, with a warning saying what was expected.
 */

import {
  ANNOTATIONS,
  NOCLOUD_SERIAL,
  NOCLOUD_SERIAL_V6,
  SEED_ADDRESSES,
} from "../shared/contract.ts";
import { quote, type Reading } from "./opt_in.ts";

export interface GuestProtection {
  /** IPv4 TTL / IPv6 hop limit of the service's replies; 0 leaves the kernel's default. */
  hopLimit: number;
  sessionsRequired: boolean;
}

type Annotations = Record<string, unknown>;

/** The VM's hop limit and session rule: its annotations where valid, else `defaults`. */
export function readGuestProtection(
  annotations: Annotations,
  defaults: GuestProtection,
): Reading<GuestProtection> {
  const value = { ...defaults };
  const warnings: string[] = [];
  const hopLimit = annotations[ANNOTATIONS.hopLimit];
  if (hopLimit !== undefined) {
    if (typeof hopLimit === "string" && /^(0|[1-9]\d{0,2})$/.test(hopLimit) && +hopLimit <= 255) {
      value.hopLimit = Number(hopLimit);
    } else {
      warnings.push(
        `${ANNOTATIONS.hopLimit} is ${
          quote(hopLimit)
        }; expected a whole number from 0 (off) to 255, so the chart's sidecar.hopLimit is used`,
      );
    }
  }
  const sessions = annotations[ANNOTATIONS.sessionsRequired];
  if (sessions === "true" || sessions === "false") {
    value.sessionsRequired = sessions === "true";
  } else if (sessions !== undefined) {
    warnings.push(
      `${ANNOTATIONS.sessionsRequired} is ${
        quote(sessions)
      }; expected "true" or "false", so the chart's sidecar.sessionsRequired is used`,
    );
  }
  return { value, warnings };
}

/** The NoCloud serial the VM's seed address asks for (IPv4 unless `ipv6`). */
export function readSeedSerial(annotations: Annotations): Reading<string> {
  const address = annotations[ANNOTATIONS.seedAddress];
  if (address === undefined || address === SEED_ADDRESSES.ipv4) {
    return { value: NOCLOUD_SERIAL, warnings: [] };
  }
  if (address === SEED_ADDRESSES.ipv6) return { value: NOCLOUD_SERIAL_V6, warnings: [] };
  return {
    value: NOCLOUD_SERIAL,
    warnings: [
      `${ANNOTATIONS.seedAddress} is ${
        quote(address)
      }; expected "${SEED_ADDRESSES.ipv4}" or "${SEED_ADDRESSES.ipv6}", so the IPv4 seed URL is used`,
    ],
  };
}
