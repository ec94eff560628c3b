/**
 * The part of @kubernetes/client-node's serializer the pod schema check uses,
 * declared here so type checking does not pull in the package's own typings.
 */
export declare const ObjectSerializer: {
  serialize(data: unknown, type: string): unknown;
  deserialize(data: unknown, type: string): unknown;
};
