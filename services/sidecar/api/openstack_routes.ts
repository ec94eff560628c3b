/**
 * The /openstack paths, whose endpoints (openstack_api.ts, with the
 * network_data.json translation and its YAML parser) are loaded on the first
 * request to any of them: only guests that read the OpenStack API
 * (cloudbase-init, cloud-init's OpenStack datasource) pay for that code, the
 * others never load it. The import's specifier is a static string, so
 * `deno compile` and `deno bundle` still include the module.
 */

import type { PlainResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { SidecarConfig } from "../config.ts";
import type { OpenStackEndpoints, OpenStackSources } from "./openstack_api.ts";
import { type OpenStackPath, openstackPaths } from "./openstack_documents.ts";
import { MAX_PASSWORD_BYTES } from "./password_store.ts";
import type { Route } from "./routes.ts";

/** Every /openstack path, mapped to a route that loads the endpoints when first asked. */
export function openstackRoutes(
  config: SidecarConfig,
  sources: OpenStackSources,
  log: Logger,
): [string, Route][] {
  let endpoints: OpenStackEndpoints | undefined;
  let loading: Promise<OpenStackEndpoints> | undefined;
  const load = (): Promise<OpenStackEndpoints> =>
    loading ??= import("./openstack_api.ts").then(async (module) => {
      const made = module.openstackEndpoints(config, sources, log);
      // A YAML network-config needs its parser before network_data.json can answer.
      await made.ready;
      return endpoints = made;
    });
  const answer = (
    at: OpenStackPath,
    use: (route: Route) => PlainResponse | Promise<PlainResponse>,
  ): PlainResponse | Promise<PlainResponse> =>
    endpoints === undefined
      ? load().then((loaded) => use(loaded.route(at)))
      : use(endpoints.route(at));
  return openstackPaths().map((at): [string, Route] => {
    const route: Route = {
      protected: false,
      handle: (query, client, request) => answer(at, (real) => real.handle(query, client, request)),
    };
    if (at.file === "password") {
      route.post = {
        maxBytes: MAX_PASSWORD_BYTES,
        accept: (body) => answer(at, (real) => real.post!.accept(body)),
      };
    }
    return [at.path, route];
  });
}
