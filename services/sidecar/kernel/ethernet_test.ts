import { assertEquals, assertStringIncludes, assertThrows } from "../../../testing/assert.ts";
import {
  ETH_P_ARP,
  ETH_P_IP,
  ethertypeBytes,
  ethertypeOf,
  formatMac,
  parseMac,
} from "./ethernet.ts";

Deno.test("MAC text round-trips, and bad text is named in the error", () => {
  assertEquals(formatMac(parseMac("62:27:19:F3:0a:ef")), "62:27:19:f3:0a:ef");
  let message = "";
  try {
    parseMac("62:27:19");
  } catch (error) {
    message = (error as Error).message;
  }
  assertStringIncludes(message, '"62:27:19" is not a MAC address');
  assertThrows(() => parseMac("0e:1d:5a:00:00"), /"0e:1d:5a:00:00" is not a MAC address/);
  assertThrows(() => parseMac("0e:1d:5a:00:00:zz"), /not a MAC address/);
});

Deno.test("ethertypes are read and written big-endian at offset 12", () => {
  assertEquals([...ethertypeBytes(ETH_P_ARP)], [0x08, 0x06]);
  assertEquals([...ethertypeBytes(ETH_P_IP)], [0x08, 0x00]);
  const frame = new Uint8Array(14);
  frame.set(ethertypeBytes(ETH_P_ARP), 12);
  assertEquals(ethertypeOf(frame), ETH_P_ARP);
  assertEquals(ethertypeOf(frame.subarray(0, 13)), 0, "too short to carry one");
});
