/**
 * What the webhook and the sidecar must agree on: the metadata address, the
 * annotations users write, KubeVirt's names for virt-launcher pods, the
 * environment variables the webhook sets on the sidecar and the paths where it
 * mounts files for it. Change a name here and both services follow.
 */

/** The link-local address guests ask, as on every major cloud. */
export const METADATA_ADDRESS = "169.254.169.254";

/** The DMI serial that points cloud-init's NoCloud datasource at the service (see README). */
export const NOCLOUD_SERIAL = `ds=nocloud;s=http://${METADATA_ADDRESS}/v1/;dsmode=net`;

/** The header a workload must send on identity and token requests. */
export const METADATA_HEADER = "Metadata";

/** Annotations a user sets on `spec.template.metadata` of a VirtualMachine. */
export const ANNOTATIONS = {
  enabled: "imds.kubevirt.io/enabled",
  userData: "imds.kubevirt.io/user-data",
  userDataSecret: "imds.kubevirt.io/user-data-secret",
  userDataConfigMap: "imds.kubevirt.io/user-data-configmap",
  networkConfig: "imds.kubevirt.io/network-config",
  networkConfigSecret: "imds.kubevirt.io/network-config-secret",
  networkConfigConfigMap: "imds.kubevirt.io/network-config-configmap",
} as const;

/** Labels and annotations KubeVirt puts on every virt-launcher pod. */
export const KUBEVIRT = {
  launcherLabel: "kubevirt.io",
  launcherLabelValue: "virt-launcher",
  /** Annotation (not a label) holding the VMI name. */
  domainAnnotation: "kubevirt.io/domain",
  /** Label holding the VMI uid. */
  createdByLabel: "kubevirt.io/created-by",
  /** Bridges KubeVirt creates for VM interfaces start with this. */
  bridgePrefix: "k6t-",
} as const;

/** The sidecar container's name in the virt-launcher pod. */
export const SIDECAR_CONTAINER_NAME = "imds-server";

/** Environment variables the sidecar reads (the webhook sets them). */
export const SIDECAR_ENV = {
  listenAddr: "IMDS_LISTEN_ADDR",
  tokenPath: "IMDS_TOKEN_PATH",
  /** JSON object mapping audience → token file path, for `/v1/token?audience=`. */
  audienceTokens: "IMDS_AUDIENCE_TOKENS",
  namespace: "IMDS_NAMESPACE",
  vmName: "IMDS_VM_NAME",
  saName: "IMDS_SA_NAME",
  podName: "IMDS_POD_NAME",
  vmiUid: "IMDS_VMI_UID",
  nodeName: "IMDS_NODE_NAME",
  userData: "IMDS_USER_DATA",
  userDataFile: "IMDS_USER_DATA_FILE",
  vendorData: "IMDS_VENDOR_DATA",
  vendorDataFile: "IMDS_VENDOR_DATA_FILE",
  networkConfig: "IMDS_NETWORK_CONFIG",
  networkConfigFile: "IMDS_NETWORK_CONFIG_FILE",
  /** Sustained requests per second allowed per client address. */
  rateLimit: "IMDS_RATE_LIMIT",
  /** Requests a client may make in a burst above the sustained rate. */
  rateLimitBurst: "IMDS_RATE_LIMIT_BURST",
  logLevel: "IMDS_LOG_LEVEL",
  // Networking (the `run` subcommand).
  /** Comma-separated bridge names; when set, only these bridges are used. */
  bridgeName: "IMDS_BRIDGE_NAME",
  /** `true`/`false`: answer ARP for the metadata address on each bridge. */
  arpResponder: "IMDS_ARP_RESPONDER",
  /** `true`/`false`: layer-2 interception for bridge binding on the pod network. */
  bridgeIntercept: "IMDS_BRIDGE_INTERCEPT",
  /** `true`/`false`: put the metadata address on loopback, for passt. */
  passt: "IMDS_PASST",
} as const;

/** Where the webhook mounts things inside the sidecar container. */
export const SIDECAR_PATHS = {
  tokenDir: "/var/run/secrets/tokens",
  token: "/var/run/secrets/tokens/token",
  cloudInitDir: "/var/run/imds",
} as const;

export const DEFAULT_LISTEN_ADDR = `${METADATA_ADDRESS}:80`;
