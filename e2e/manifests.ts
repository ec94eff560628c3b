/**
 * The test manifests in deploy/test (read by testing/manifests.ts) made
 * ready for one run: every object goes into the run's namespace and carries
 * the run's label, so cleanup can prove nothing of the run is left.
 */

import type { KubeObject } from "../testing/manifests.ts";

/** The label every object of one run carries; its value is the run's id. */
export const RUN_LABEL = "e2e.imds.kubevirt.io/run";

/** Copies `objects` into `namespace` with the run label on each object and VM template. */
export function forRun(objects: KubeObject[], namespace: string, runId: string): KubeObject[] {
  return objects.map((original) => {
    const object = structuredClone(original);
    object.metadata.namespace = namespace;
    object.metadata.labels = { ...object.metadata.labels, [RUN_LABEL]: runId };
    if (object.kind === "VirtualMachine") {
      const template = (object.spec as { template: { metadata?: KubeObject["metadata"] } })
        .template;
      const metadata = template.metadata ?? ({} as KubeObject["metadata"]);
      metadata.labels = { ...metadata.labels, [RUN_LABEL]: runId };
      template.metadata = metadata;
    }
    return object;
  });
}
