/**
 * What a virt-launcher pod's injected sidecar container must look like, wherever the pod comes
 * from (the webhook's patch, a rendered spec, a live cluster). The check returns the list of
 * problems found (empty = as expected), so a failure names every difference at once.
 */

import { SIDECAR_CONTAINER_NAME } from "../services/shared/contract.ts";

/** The only capabilities the sidecar may add. */
export const SIDECAR_CAPABILITIES = ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"] as const;

interface ContainerLike {
  name: string;
  args?: string[];
  command?: string[];
  restartPolicy?: string;
  securityContext?: {
    capabilities?: { add?: string[]; drop?: string[] };
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    runAsUser?: number;
  };
}

export interface PodLike {
  spec?: { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
}

/** The sidecar is injected once, runs `run`, and has exactly the expected privileges. */
export function sidecarProblems(pod: PodLike): string[] {
  const containers = pod.spec?.containers ?? [];
  const inits = pod.spec?.initContainers ?? [];
  const found = [
    ...containers.filter((c) => c.name === SIDECAR_CONTAINER_NAME).map((c) => ({ c, init: false })),
    ...inits.filter((c) => c.name === SIDECAR_CONTAINER_NAME).map((c) => ({ c, init: true })),
  ];
  if (found.length !== 1) {
    return [`expected one ${SIDECAR_CONTAINER_NAME} container, found ${found.length}`];
  }
  const { c, init } = found[0];
  const problems: string[] = [];
  if (init && c.restartPolicy !== "Always") {
    problems.push(
      `as an init container it must be a native sidecar (restartPolicy Always), has ${c.restartPolicy}`,
    );
  }
  if (c.command !== undefined) {
    problems.push(`command is set (${JSON.stringify(c.command)}); the image entrypoint must run`);
  }
  if (JSON.stringify(c.args ?? []) !== JSON.stringify(["run"])) {
    problems.push(`args are ${JSON.stringify(c.args ?? [])}, expected ["run"]`);
  }
  const sc = c.securityContext ?? {};
  const added = [...(sc.capabilities?.add ?? [])].map((x) => x.replace(/^CAP_/, "")).sort();
  if (JSON.stringify(added) !== JSON.stringify([...SIDECAR_CAPABILITIES])) {
    problems.push(
      `capabilities added are ${JSON.stringify(added)}, expected ${
        JSON.stringify(SIDECAR_CAPABILITIES)
      }`,
    );
  }
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) {
    problems.push("capabilities do not drop ALL");
  }
  if (sc.readOnlyRootFilesystem !== true) problems.push("root filesystem is not read-only");
  if (sc.allowPrivilegeEscalation !== false) {
    problems.push("allowPrivilegeEscalation is not false");
  }
  if (sc.privileged === true) problems.push("container is privileged");
  // Kubernetes grants no ambient capabilities: only uid 0 gets the added ones.
  if (sc.runAsUser !== 0) problems.push(`runAsUser is ${sc.runAsUser}, expected 0`);
  return problems;
}
