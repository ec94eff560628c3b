import { assertEquals } from "../../../testing/assert.ts";
import { createLearnedGuests, GUEST_CAPACITY_PER_BRIDGE } from "./learned_guests.ts";

const IDLE_MS = 10_000;
const nothingInUse = () => false;
const ips = (list: { ip: string }[]) => list.map((guest) => guest.ip);

Deno.test("no more guests than the capacity are kept; a new one displaces the least recently seen", () => {
  const guests = createLearnedGuests({ capacity: 3, idleMs: IDLE_MS });
  for (let i = 1; i <= 3; i++) {
    assertEquals(
      guests.learn(`169.254.0.${i}`, `02:00:00:00:00:0${i}`, i, nothingInUse),
      undefined,
    );
  }
  const displaced = guests.learn("169.254.0.4", "02:00:00:00:00:04", 4, nothingInUse);
  assertEquals(displaced?.ip, "169.254.0.1");
  assertEquals(guests.size, 3);
  assertEquals(ips(guests.list()), ["169.254.0.2", "169.254.0.3", "169.254.0.4"]);
});

Deno.test("a guest seen again outlives a flood of addresses seen once", () => {
  const guests = createLearnedGuests({ capacity: GUEST_CAPACITY_PER_BRIDGE, idleMs: IDLE_MS });
  const real = "169.254.100.100";
  guests.learn(real, "02:00:00:00:00:aa", 0, nothingInUse); // its ARP request
  assertEquals(guests.touch(real, "02:00:00:00:00:aa", 1)?.seen, 2); // then its connection
  // A thousand spoofed senders, each seen once and each newer than the real guest.
  for (let i = 0; i < 1000; i++) {
    guests.learn(`169.254.10.${i % 250}`, "02:00:00:00:00:01", 10 + i, nothingInUse);
    assertEquals(guests.size <= GUEST_CAPACITY_PER_BRIDGE, true);
  }
  assertEquals(guests.get(real)?.mac, "02:00:00:00:00:aa");
});

Deno.test("a guest with an open connection is displaced last", () => {
  const guests = createLearnedGuests({ capacity: 2, idleMs: IDLE_MS });
  guests.learn("169.254.0.1", "02:00:00:00:00:01", 1, nothingInUse);
  guests.learn("169.254.0.2", "02:00:00:00:00:02", 2, nothingInUse);
  const connected = (ip: string) => ip === "169.254.0.1";
  assertEquals(guests.learn("169.254.0.3", "02:00:00:00:00:03", 3, connected)?.ip, "169.254.0.2");
  // Everyone connected: the least worth keeping still gives way, so a new guest is learned.
  assertEquals(guests.learn("169.254.0.4", "02:00:00:00:00:04", 4, () => true)?.ip, "169.254.0.1");
  assertEquals(ips(guests.list()), ["169.254.0.3", "169.254.0.4"]);
});

Deno.test("a known address with a new MAC is learned again in place, without displacing another", () => {
  const guests = createLearnedGuests({ capacity: 2, idleMs: IDLE_MS });
  guests.learn("169.254.0.1", "02:00:00:00:00:01", 1, nothingInUse);
  guests.learn("169.254.0.2", "02:00:00:00:00:02", 2, nothingInUse);
  assertEquals(guests.touch("169.254.0.1", "02:00:00:00:00:99", 3), undefined, "MAC changed");
  assertEquals(guests.learn("169.254.0.1", "02:00:00:00:00:99", 3, nothingInUse), undefined);
  assertEquals(guests.get("169.254.0.1")?.mac, "02:00:00:00:00:99");
  assertEquals(guests.size, 2);
});

Deno.test("a guest not seen for the idle time is due for removal; being seen refreshes it", () => {
  const guests = createLearnedGuests({ capacity: 4, idleMs: IDLE_MS });
  assertEquals(guests.nextIdleAt(), undefined);
  guests.learn("169.254.0.1", "02:00:00:00:00:01", 0, nothingInUse);
  guests.learn("169.254.0.2", "02:00:00:00:00:02", 1000, nothingInUse);
  assertEquals(guests.nextIdleAt(), IDLE_MS);
  assertEquals(ips(guests.idle(IDLE_MS - 1)), []);
  assertEquals(ips(guests.idle(IDLE_MS)), ["169.254.0.1"]);
  guests.touch("169.254.0.1", "02:00:00:00:00:01", 9000);
  assertEquals(ips(guests.idle(IDLE_MS + 1000)), ["169.254.0.2"]);
  assertEquals(guests.nextIdleAt(), 1000 + IDLE_MS);
  guests.forget("169.254.0.2");
  assertEquals(guests.nextIdleAt(), 9000 + IDLE_MS);
  assertEquals(ips(guests.idle(9000 + IDLE_MS)), ["169.254.0.1"]);
});
