/**
 * The VM's identity as the API serves it (/v1/identity, and the head of
 * /v1/instance): the required names plus whatever else is known.
 */

import type { Identity } from "../config.ts";

export interface IdentityDocument {
  namespace: string;
  serviceAccountName: string;
  vmName: string;
  instanceId: string;
  podName?: string;
  vmiUid?: string;
  nodeName?: string;
}

/** What /v1/identity returns. */
export function identityDocument(identity: Identity): IdentityDocument {
  const document: IdentityDocument = {
    namespace: identity.namespace,
    serviceAccountName: identity.serviceAccountName,
    vmName: identity.vmName,
    instanceId: instanceId(identity),
  };
  if (identity.podName) document.podName = identity.podName;
  if (identity.vmiUid) document.vmiUid = identity.vmiUid;
  if (identity.nodeName) document.nodeName = identity.nodeName;
  return document;
}

export function instanceId(identity: Identity): string {
  return `${identity.namespace}-${identity.vmName}`;
}
