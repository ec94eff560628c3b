/**
 * The part of @kubernetes/client-node's serializer the schema checks use.
 * Declared here so that type checking does not pull in the package's own
 * typings (and with them a different @types/node for the whole program).
 */
export declare const ObjectSerializer: {
  serialize(data: unknown, type: string): unknown;
  deserialize(data: unknown, type: string): unknown;
};
