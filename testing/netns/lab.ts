/**
 * A lab: a set of network namespaces and processes with one unique name
 * prefix (`lab-<id>-`), torn down together. Everything a topology builder
 * creates is registered here so `cleanup()` removes it even when a test fails
 * half-way.
 */
import { mustRun, run } from "./command.ts";

export interface Lab {
  /** Random hex that makes this lab's names unique on the machine. */
  id: string;
  /** A new network namespace `lab-<id>-<role>`, with loopback up. */
  addNamespace(role: string): Promise<string>;
  /** Registers a clean-up step; steps run in reverse order. */
  defer(step: () => Promise<void> | void): void;
  /** Kills the lab's processes, deletes its namespaces and temporary files. */
  cleanup(): Promise<void>;
}

/** All lab namespace names start with this. */
export const LAB_PREFIX = "lab-";

export function createLab(): Lab {
  const id = Array.from(crypto.getRandomValues(new Uint8Array(3)))
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const steps: Array<() => Promise<void> | void> = [];
  const namespaces: string[] = [];

  return {
    id,
    async addNamespace(role) {
      const name = `${LAB_PREFIX}${id}-${role}`;
      await mustRun(["ip", "netns", "add", name]);
      namespaces.push(name);
      await mustRun(["ip", "-n", name, "link", "set", "lo", "up"]);
      return name;
    },
    defer(step) {
      steps.push(step);
    },
    async cleanup() {
      const errors: string[] = [];
      // Processes first, so no pipe or wait below can hang on a child's child.
      for (const ns of namespaces) await killNamespaceProcesses(ns);
      for (const step of steps.splice(0).reverse()) {
        try {
          await step();
        } catch (error) {
          errors.push(error instanceof Error ? error.message : String(error));
        }
      }
      for (const ns of namespaces.splice(0).reverse()) {
        const result = await run(["ip", "netns", "del", ns]);
        if (result.code !== 0) errors.push(`deleting ${ns}: ${result.stderr.trim()}`);
      }
      if (errors.length > 0) throw new Error(`lab clean-up failed: ${errors.join("; ")}`);
    },
  };
}

/** Process ids running in namespace `ns` (all of them started by the lab). */
export async function namespacePids(ns: string): Promise<number[]> {
  const result = await run(["ip", "netns", "pids", ns]);
  if (result.code !== 0) return [];
  return result.stdout.split(/\s+/).filter((word) => word !== "").map(Number);
}

async function killNamespaceProcesses(ns: string): Promise<void> {
  for (const pid of await namespacePids(ns)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** A random locally administered unicast MAC address. */
export function randomMac(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return Array.from(bytes).map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}
