/**
 * Whether this machine can run the lab (root, Linux, the tools it drives), and
 * a Deno.test wrapper that skips with the reason, except under CI=true where a
 * missing prerequisite is a failure.
 */

/** Tools the lab runs (Debian packages iproute2, nftables, tcpdump, iputils-arping, curl, util-linux). */
export const LAB_TOOLS = [
  "ip",
  "bridge",
  "nft",
  "tcpdump",
  "arping",
  "curl",
  "setpriv",
  "mount",
] as const;

function onPath(tool: string): boolean {
  const path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  return path.split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Why the lab cannot run here, or undefined when it can. */
export function labUnavailableReason(): string | undefined {
  if (Deno.build.os !== "linux") return "it needs Linux network namespaces";
  if (Deno.uid() !== 0) {
    return "it creates network namespaces, bridges and veths, which needs root (CI runs it as root)";
  }
  const missing = LAB_TOOLS.filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    return `these tools are missing: ${missing.join(", ")} ` +
      "(apt-get install iproute2 nftables tcpdump iputils-arping curl util-linux mount)";
  }
  return undefined;
}

const reason = labUnavailableReason();
const underCi = Deno.env.get("CI") === "true";
let warned = false;

/**
 * Registers a lab test. Outside root it is skipped with a message saying why;
 * with CI=true it always runs, and fails with that message if it cannot.
 */
export function labTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (reason !== undefined && !underCi && !warned) {
    warned = true;
    console.warn(`network namespace lab skipped: ${reason}`);
  }
  Deno.test({
    name,
    ignore: reason !== undefined && !underCi,
    async fn(t) {
      if (reason !== undefined) throw new Error(`the network namespace lab cannot run: ${reason}`);
      await fn(t);
    },
  });
}
