/**
 * The OpenStack-compatible metadata API under /openstack: what cloudbase-init
 * (Windows) and cloud-init's OpenStack datasource read. No `Metadata` header
 * is required (neither client can send one). Every dated version and
 * `latest` serve the same documents, within Nova's rules for which version
 * has which file. The one write is the guest's encrypted password.
 */

import { errorAnswer, jsonAnswer, type PlainResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { SidecarConfig } from "../config.ts";
import type { ClientMacLookup } from "./client_mac.ts";
import { type DocumentReader, documentReader } from "./cloud_init_files.ts";
import { guestMetaData, type InstanceState } from "./instance_document.ts";
import {
  fileList,
  metaDataJson,
  type OpenStackFile,
  type OpenStackPath,
  vendorDataJson,
  versionList,
} from "./openstack_documents.ts";
import { dhcpNetworkData, type NetworkData, translateNetworkConfig } from "./openstack_network.ts";
import { isPasswordCiphertext, MAX_PASSWORD_BYTES, type PasswordStore } from "./password_store.ts";
import { NO_STORE_TEXT_HEADERS, RETRY_AFTER_SECONDS, TEXT_HEADERS } from "./answer_headers.ts";
import type { Route } from "./routes.ts";
import type { SshKeyReader } from "./ssh_keys.ts";

export interface OpenStackSources {
  userData: DocumentReader;
  vendorData: DocumentReader;
  /** The NoCloud network-config the guest would get; translated for network_data.json. */
  networkConfig: DocumentReader;
  sshKeys: SshKeyReader;
  passwords: PasswordStore;
  clientMac: ClientMacLookup;
  /** The VM's labels and custom metadata, served in meta_data.json's `meta`. */
  instance: () => InstanceState;
}

const decoder = new TextDecoder();

/** The routes of the API, and when network_data.json can be answered. */
export interface OpenStackEndpoints {
  /** The route that serves `at`. */
  route(at: OpenStackPath): Route;
  /** Settles once the YAML parser a YAML network-config needs has loaded (at once when none does). */
  ready: Promise<void>;
}

export function openstackEndpoints(
  config: SidecarConfig,
  sources: OpenStackSources,
  log: Logger,
): OpenStackEndpoints {
  const documents = openstackDocuments(config, sources, log);
  const read = (handle: (client: string) => PlainResponse): Route => ({
    protected: false,
    handle: (_query, client) => handle(client ?? ""),
  });
  const versions = read(() => ({ status: 200, headers: TEXT_HEADERS, body: versionList() }));
  const listing = (version: string) =>
    read(() => {
      const userData = documents.userData();
      const has = "bytes" in userData && userData.bytes.length > 0;
      return { status: 200, headers: TEXT_HEADERS, body: fileList(version, has) };
    });
  const files: Record<OpenStackFile, Route> = {
    "meta_data.json": read(() => documents.metaData()),
    "user_data": read(() => documents.userDataResponse()),
    "vendor_data.json": read(() => documents.vendorData()),
    "vendor_data2.json": read(() => jsonAnswer(200, {})),
    "network_data.json": read((client) => documents.networkData(client)),
    "password": {
      ...read(() => ({
        status: 200,
        headers: NO_STORE_TEXT_HEADERS,
        body: sources.passwords.get(),
      })),
      post: { maxBytes: MAX_PASSWORD_BYTES, accept: (body) => acceptPassword(body, sources) },
    },
  };
  return {
    route: (at) =>
      at.version === undefined
        ? versions
        : at.file === undefined
        ? listing(at.version)
        : files[at.file],
    ready: documents.ready,
  };
}

function openstackDocuments(config: SidecarConfig, sources: OpenStackSources, log: Logger) {
  const adminPassword = documentReader(config.guestAccess.adminPassword);
  const networkData = networkDataBuilder(sources, log);
  return {
    userData: sources.userData,
    ready: networkData.ready,
    metaData(): PlainResponse {
      const password = adminPassword();
      if ("unavailable" in password) {
        log.warn("admin password file unreadable", { reason: password.unavailable });
      }
      const { labels, meta } = guestMetaData(sources.instance());
      const document = metaDataJson({
        identity: config.identity,
        keys: sources.sshKeys(),
        adminUsername: config.guestAccess.adminUsername,
        adminPassword: "bytes" in password ? secretText(password.bytes) : undefined,
        labels,
        meta,
      });
      return jsonAnswer(200, document, { "cache-control": "no-store" });
    },
    userDataResponse(): PlainResponse {
      const result = sources.userData();
      if ("unavailable" in result) return unavailable("user_data", result.unavailable, log);
      if (result.bytes.length === 0) {
        return errorAnswer(404, "not_found", "no user-data is configured for this VM");
      }
      return { status: 200, headers: TEXT_HEADERS, body: result.bytes };
    },
    vendorData(): PlainResponse {
      const result = sources.vendorData();
      if ("unavailable" in result) return unavailable("vendor_data.json", result.unavailable, log);
      return jsonAnswer(200, vendorDataJson(decoder.decode(result.bytes)));
    },
    networkData(client: string): PlainResponse {
      const result = networkData.forClient(client);
      if ("unavailable" in result) {
        return unavailable("network_data.json", result.unavailable, log);
      }
      if (result.data === undefined) {
        return errorAnswer(
          404,
          "not_found",
          "no network configuration is known for this client; configure the network by DHCP",
        );
      }
      return jsonAnswer(200, result.data);
    },
  };
}

/** A Secret's value as a password: one trailing newline (as `kubectl create secret --from-file` leaves) removed. */
function secretText(bytes: Uint8Array): string {
  return decoder.decode(bytes).replace(/\r?\n$/, "");
}

function unavailable(name: string, reason: string, log: Logger): PlainResponse {
  log.warn(`${name} source unreadable`, { reason });
  return errorAnswer(
    503,
    "data_unavailable",
    `${name} is configured from a file that cannot be read yet; retry shortly`,
    { headers: { "retry-after": String(RETRY_AFTER_SECONDS) } },
  );
}

function acceptPassword(body: Uint8Array, sources: OpenStackSources): PlainResponse {
  const text = decoder.decode(body).trim();
  if (!isPasswordCiphertext(text)) {
    return errorAnswer(
      400,
      "invalid_password",
      "the password must be the base64 of the encrypted password (standard alphabet, padded)",
    );
  }
  const result = sources.passwords.set(text);
  if (result === "already_set") {
    return errorAnswer(
      409,
      "password_already_set",
      "a password was posted already; it is kept and cannot be replaced",
    );
  }
  if (result !== "stored") {
    return errorAnswer(500, "password_not_saved", "the password could not be saved; retry");
  }
  return { status: 200, headers: {}, body: "" };
}

type NetworkDataResult = { data: NetworkData | undefined } | { unavailable: string };

/**
 * network_data.json for a client: the translated network-config when it
 * names at least one NIC, else the client's own NIC with DHCP when its MAC is
 * known. YAML is parsed by a module loaded only when a network-config exists.
 */
function networkDataBuilder(
  sources: OpenStackSources,
  log: Logger,
): { forClient: (client: string) => NetworkDataResult; ready: Promise<void> } {
  let yaml: ((text: string) => unknown) | undefined;
  let yamlLoading: Promise<void> | undefined;
  const loadYaml = () => {
    // The sidecar runs with --no-config (no import map), so the version is pinned here;
    // keep it equal to import_map.json's "yaml".
    // deno-lint-ignore no-import-prefix
    yamlLoading ??= import("npm:yaml@2.9.1").then(
      (module) => {
        yaml = (text) => module.parse(text, { maxAliasCount: 100 });
      },
      (error) => log.error("the YAML parser could not be loaded", { error }),
    );
  };
  let cached: { bytes: Uint8Array; data: NetworkData | undefined } | undefined;
  const translated = (bytes: Uint8Array): NetworkData | undefined | "loading" => {
    if (cached?.bytes === bytes) return cached.data;
    const text = decoder.decode(bytes);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      if (yaml === undefined) {
        loadYaml();
        return "loading";
      }
      try {
        document = yaml(text);
      } catch (error) {
        log.warn("network-config is not valid YAML; network_data.json leaves it out", {
          reason: error instanceof Error ? error.message.split("\n")[0] : String(error),
        });
        cached = { bytes, data: undefined };
        return undefined;
      }
    }
    const translation = translateNetworkConfig(document);
    if (translation.skipped.length > 0) {
      log.warn("parts of network-config cannot be expressed in network_data.json", {
        skipped: translation.skipped,
      });
    }
    const data = translation.data.links.length > 0 ? translation.data : undefined;
    cached = { bytes, data };
    return data;
  };
  // Start loading the parser at once when a network-config may be YAML.
  const initial = sources.networkConfig();
  if ("bytes" in initial && initial.bytes.length > 0) translated(initial.bytes);
  const forClient = (client: string): NetworkDataResult => {
    const source = sources.networkConfig();
    if ("unavailable" in source) return source;
    if (source.bytes.length > 0) {
      const data = translated(source.bytes);
      if (data === "loading") return { unavailable: "the YAML parser is still loading" };
      if (data !== undefined) return { data };
    }
    const mac = sources.clientMac(client);
    return { data: mac === undefined ? undefined : dhcpNetworkData(mac) };
  };
  return { forClient, ready: yamlLoading ?? Promise.resolve() };
}
