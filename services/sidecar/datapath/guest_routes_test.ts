import { assertEquals } from "../../../testing/assert.ts";
import { openConnectionPeers } from "./guest_routes.ts";

// /proc/net/tcp as a pod with the metadata server (169.254.169.254:80 = FEA9FEA9:0050) shows it.
const PROC_NET_TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: FEA9FEA9:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1",
  // 169.254.100.100:41000, established
  "   1: FEA9FEA9:0050 6464FEA9:A028 01 00000000:00000000 00:00000000 00000000     0        0 2 1",
  // 169.254.100.101, a connection being accepted (SYN_RECV)
  "   2: FEA9FEA9:0050 6564FEA9:A029 03 00000000:00000000 00:00000000 00000000     0        0 3 1",
  // 169.254.100.102, closed on our side long ago (TIME_WAIT)
  "   3: FEA9FEA9:0050 6664FEA9:A02A 06 00000000:00000000 00:00000000 00000000     0        0 0 1",
  // 10.244.0.7 to the API server: not the metadata address
  "   4: 0700F40A:D431 0100600A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 4 1",
  "",
].join("\n");

Deno.test("open connections to the metadata address keep their guests' way back", () => {
  assertEquals(
    [...openConnectionPeers(PROC_NET_TCP, "169.254.169.254")],
    ["169.254.100.100", "169.254.100.101"],
  );
  assertEquals([...openConnectionPeers(PROC_NET_TCP, "10.244.0.7")], ["10.96.0.1"]);
  assertEquals(openConnectionPeers("", "169.254.169.254").size, 0);
});
