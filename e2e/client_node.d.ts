/**
 * The part of @kubernetes/client-node the suite uses. Declared here so that
 * type checking does not pull in the package's own typings (and with them a
 * different @types/node for the whole program).
 */

import type { Readable, Writable } from "node:stream";

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface V1Status {
  status?: string;
  reason?: string;
  message?: string;
  details?: { causes?: Array<{ reason?: string; message?: string }> };
}

export interface V1Pod extends KubernetesObject {
  // deno-lint-ignore no-explicit-any
  spec?: any;
  status?: { phase?: string };
}

export interface V1Namespace extends KubernetesObject {
  status?: { phase?: string };
}

export interface V1Deployment extends KubernetesObject {
  status?: { readyReplicas?: number };
}

export interface V1TokenReview extends KubernetesObject {
  status?: { authenticated?: boolean; error?: string; user?: { username?: string } };
}

export interface Context {
  name: string;
  cluster: string;
  user: string;
}

export declare class KubeConfig {
  loadFromDefault(): void;
  getContexts(): Context[];
  setCurrentContext(name: string): void;
  getCurrentCluster(): { name: string; server: string } | null;
  makeApiClient<T>(api: new (...args: never[]) => T): T;
}

export declare class ApiException<T> extends Error {
  code: number;
  body: T;
}

export declare class VersionApi {
  getCode(): Promise<{ gitVersion: string }>;
}

export declare class CoreV1Api {
  createNamespace(param: { body: V1Namespace }): Promise<V1Namespace>;
  deleteNamespace(param: { name: string; propagationPolicy?: string }): Promise<V1Status>;
  readNamespace(param: { name: string }): Promise<V1Namespace>;
  listNamespacedPod(
    param: { namespace: string; labelSelector?: string },
  ): Promise<{ items: V1Pod[] }>;
  listPodForAllNamespaces(param: { labelSelector?: string }): Promise<{ items: V1Pod[] }>;
}

export declare class AppsV1Api {
  listNamespacedDeployment(param: { namespace: string }): Promise<{ items: V1Deployment[] }>;
}

export declare class AuthenticationV1Api {
  createTokenReview(
    param: { body: V1TokenReview & { spec: { token: string } } },
  ): Promise<V1TokenReview>;
}

export declare class CustomObjectsApi {
  getNamespacedCustomObject(param: {
    group: string;
    version: string;
    namespace: string;
    plural: string;
    name: string;
    // deno-lint-ignore no-explicit-any
  }): Promise<any>;
  patchNamespacedCustomObject(param: {
    group: string;
    version: string;
    namespace: string;
    plural: string;
    name: string;
    /** A JSON Patch (RFC 6902): the client's default content type for this call. */
    body: unknown[];
    // deno-lint-ignore no-explicit-any
  }): Promise<any>;
  listClusterCustomObject(param: {
    group: string;
    version: string;
    plural: string;
    labelSelector?: string;
    limit?: number;
    // deno-lint-ignore no-explicit-any
  }): Promise<{ items: any[] }>;
}

export declare class KubernetesObjectApi {
  static makeApiClient(config: KubeConfig): KubernetesObjectApi;
  create<T extends KubernetesObject>(spec: T): Promise<T>;
}

export interface ExecSocket {
  on(event: "close", listener: () => void): void;
  on(event: "error", listener: (error: Error) => void): void;
}

export declare class Exec {
  constructor(config: KubeConfig);
  exec(
    namespace: string,
    podName: string,
    containerName: string,
    command: string | string[],
    stdout: Writable | null,
    stderr: Writable | null,
    stdin: Readable | null,
    tty: boolean,
    statusCallback?: (status: V1Status) => void,
  ): Promise<ExecSocket>;
}
