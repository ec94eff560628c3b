/** How lab tests run: one fresh lab per test, and steps that show the sidecar's log on failure. */
import { createLab, type Lab } from "./lab.ts";
import type { Sidecar } from "./sidecar_process.ts";

/** Runs `body` with a fresh lab, always cleaned up. */
export async function withLab(body: (lab: Lab) => Promise<void>): Promise<void> {
  const lab = createLab();
  try {
    await body(lab);
  } finally {
    await lab.cleanup();
  }
}

/** A test step whose failure message ends with the sidecar's last log lines. */
export function step(
  t: Deno.TestContext,
  name: string,
  sidecar: () => Sidecar | undefined,
  fn: () => Promise<void>,
): Promise<boolean> {
  return t.step(name, async () => {
    try {
      await fn();
    } catch (error) {
      const logs = sidecar()?.tail();
      if (logs && error instanceof Error) error.message += `\n--- sidecar log ---\n${logs}`;
      throw error;
    }
  });
}
