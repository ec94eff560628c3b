/**
 * What the webhook and the sidecar must agree on: the metadata address, the
 * annotations users write, KubeVirt's names for virt-launcher pods, the
 * environment variables the webhook sets on the sidecar and the paths where it
 * mounts files for it. Change a name here and both services follow.
 */

/** The link-local address guests ask, as on every major cloud. */
export const METADATA_ADDRESS = "169.254.169.254";

/**
 * The IPv6 address guests ask, AWS's IPv6 instance metadata address: a unique local address
 * (fd00::/8) rather than a link-local one, so URLs need no zone index (`%eth0`) and the NoCloud
 * seed URL is the same for every guest; guests reach it through their default route (masquerade,
 * bridge binding) or an on-link route (IPv6-only secondary networks without a router).
 */
export const METADATA_ADDRESS_V6 = "fd00:ec2::254";

/** The DMI serial that points cloud-init's NoCloud datasource at the service (see README). */
export const NOCLOUD_SERIAL = `ds=nocloud;s=http://${METADATA_ADDRESS}/v1/;dsmode=net`;

/** The same over IPv6, for IPv6-only guests (a bracketed seed URL, cloud-init 23.1 or later). */
export const NOCLOUD_SERIAL_V6 = `ds=nocloud;s=http://[${METADATA_ADDRESS_V6}]/v1/;dsmode=net`;

/** Values of ANNOTATIONS.seedAddress: which of the two addresses the NoCloud serial names. */
export const SEED_ADDRESSES = { ipv4: "ipv4", ipv6: "ipv6" } as const;

/** `PUT` here with SESSION_TTL_HEADER returns a session token. */
export const SESSION_PATH = "/v1/session";
/** The session token, on requests that need one (and on the PUT that ends an old one: never). */
export const SESSION_HEADER = "X-Imds-Session";
/** The session's lifetime in whole seconds, on `PUT /v1/session`. */
export const SESSION_TTL_HEADER = "X-Imds-Session-Ttl-Seconds";
/** Bounds of SESSION_TTL_HEADER. */
export const SESSION_TTL_SECONDS = { min: 1, max: 21_600 } as const;

/** The IPv4 TTL / IPv6 hop limit of the service's replies unless configured (0 leaves the kernel's). */
export const DEFAULT_HOP_LIMIT = 1;

/**
 * Seconds without traffic before the route back to a link-local guest address is removed
 * (SIDECAR_ENV.guestRouteIdleSeconds): by default five minutes, the bridge's own ageing time
 * for the forwarding entry of the guest's MAC.
 */
export const GUEST_ROUTE_IDLE_SECONDS = { default: 300, min: 1, max: 86_400 } as const;

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
  /** `pod-networks`: generate network-config from the pod's Multus network-status. */
  networkConfigFrom: "imds.kubevirt.io/network-config-from",
  /** Comma-separated CIDRs of the pod networks' subnets: the prefix lengths network-status leaves out. */
  networkConfigSubnets: "imds.kubevirt.io/network-config-subnets",
  /** Which datasource the guest's cloud-init detects: DATASOURCES (default nocloud). */
  datasource: "imds.kubevirt.io/datasource",
  /** A Secret whose every key holds SSH public keys for the guest. */
  sshKeysSecret: "imds.kubevirt.io/ssh-keys-secret",
  /** `NAME` or `NAME/KEY` of a Secret holding the guest's admin password (OpenStack `admin_pass`). */
  adminPasswordSecret: "imds.kubevirt.io/admin-password-secret",
  /** The admin account cloudbase-init creates or sets the password of (OpenStack `meta.admin_username`). */
  adminUsername: "imds.kubevirt.io/admin-username",
  /** IPv4 TTL and IPv6 hop limit of the service's replies, 1-255; 0 leaves the kernel's default. */
  hopLimit: "imds.kubevirt.io/hop-limit",
  /** `true`: identity, token and the instance document need a session token (`PUT /v1/session`). */
  sessionsRequired: "imds.kubevirt.io/sessions-required",
  /** SEED_ADDRESSES: `ipv6` makes the NoCloud serial point at METADATA_ADDRESS_V6. */
  seedAddress: "imds.kubevirt.io/seed-address",
  /**
   * Written by the VM webhook, not by users: the Secrets of the VM's
   * `spec.accessCredentials` SSH keys, comma-separated, for the pod webhook to mount.
   */
  accessCredentialsSecrets: "imds.kubevirt.io/access-credentials-secrets",
} as const;

/** Values of ANNOTATIONS.datasource. Both APIs are always served; this picks what cloud-init detects. */
export const DATASOURCES = { nocloud: "nocloud", openstack: "openstack" } as const;

/** The DMI chassis asset tag that makes cloud-init pick its OpenStack datasource. */
export const OPENSTACK_ASSET_TAG = "OpenStack Compute";

/** The key of ANNOTATIONS.adminPasswordSecret's Secret when none is named. */
export const ADMIN_PASSWORD_DEFAULT_KEY = "password";

/** The value of ANNOTATIONS.networkConfigFrom that turns generation on. */
export const NETWORK_CONFIG_FROM_POD_NETWORKS = "pod-networks";

/** Annotations `meta.imds.kubevirt.io/<key>: <value>` are the VM's custom metadata. */
export const CUSTOM_METADATA_PREFIX = "meta.imds.kubevirt.io/";

/** Multus annotations on the pod (k8snetworkplumbingwg network-attachment-definition spec). */
export const MULTUS = {
  /** JSON list the pod asks for: `[{"name", "namespace", "interface", "mac"}]`. */
  networksAnnotation: "k8s.v1.cni.cncf.io/networks",
  /** JSON list Multus writes once the pod's interfaces exist: names, IPs, MACs, gateways, DNS. */
  networkStatusAnnotation: "k8s.v1.cni.cncf.io/network-status",
} as const;

/** Labels and annotations KubeVirt puts on every virt-launcher pod. */
export const KUBEVIRT = {
  launcherLabel: "kubevirt.io",
  launcherLabelValue: "virt-launcher",
  /** Annotation (not a label) holding the VMI name. */
  domainAnnotation: "kubevirt.io/domain",
  /** Label holding the VMI uid. */
  createdByLabel: "kubevirt.io/created-by",
  /**
   * Labels KubeVirt adds to the pod (or keeps on the VMI for itself) rather
   * than taking from the VM: left out of the labels a guest sees.
   */
  ownLabels: [
    "kubevirt.io",
    "kubevirt.io/created-by",
    "kubevirt.io/nodeName",
    "kubevirt.io/outdatedLauncherImage",
    "kubevirt.io/migrationTargetNodeName",
    "vm.kubevirt.io/name",
    "vmi.kubevirt.io/id",
  ],
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
  /** Directory of SSH public keys: one sub-directory per Secret, one file per key. */
  sshKeysDir: "IMDS_SSH_KEYS_DIR",
  /** File holding the guest's admin password (served as OpenStack `admin_pass`). */
  adminPasswordFile: "IMDS_ADMIN_PASSWORD_FILE",
  /** The admin account name (OpenStack `meta.admin_username`). */
  adminUsername: "IMDS_ADMIN_USERNAME",
  /** Directory kept for the pod's life: holds the password a guest posts. */
  stateDir: "IMDS_STATE_DIR",
  /** The pod's labels, a downward API whole-map file (`key="value"` lines). */
  podLabelsFile: "IMDS_POD_LABELS_FILE",
  /** The pod's annotations, a downward API whole-map file. */
  podAnnotationsFile: "IMDS_POD_ANNOTATIONS_FILE",
  /** Comma-separated annotation keys, or prefixes ending in `*`, a guest may read. */
  allowedAnnotations: "IMDS_ALLOWED_ANNOTATIONS",
  /** `pod-networks`: generate network-config from IMDS_NETWORK_STATUS_FILE. */
  networkConfigFrom: "IMDS_NETWORK_CONFIG_FROM",
  /** The pod's Multus network-status annotation, as a downward API file. */
  networkStatusFile: "IMDS_NETWORK_STATUS_FILE",
  /** Comma-separated pod interfaces the pod asked Multus for; network-status must list them all. */
  podInterfaces: "IMDS_POD_INTERFACES",
  /** Comma-separated CIDRs giving the generated addresses their prefix lengths. */
  podNetworkSubnets: "IMDS_POD_NETWORK_SUBNETS",
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
  /** IPv4 TTL / IPv6 hop limit set on every reply (0-255; 0 leaves the kernel's default). */
  hopLimit: "IMDS_HOP_LIMIT",
  /** `true`/`false`: identity, token and the instance document need a session token. */
  sessionsRequired: "IMDS_SESSIONS_REQUIRED",
  /**
   * Seconds without traffic after which the route back to a link-local guest address is removed
   * (it is learned again from the guest's next request).
   */
  guestRouteIdleSeconds: "IMDS_GUEST_ROUTE_IDLE_SECONDS",
} as const;

/**
 * Environment variables the webhook reads, each the fallback of its command-line flag
 * (the chart sets IMDS_WEBHOOK_MEMORY_LIMIT from the container's memory limit).
 */
export const WEBHOOK_ENV = {
  listen: "IMDS_WEBHOOK_LISTEN",
  tlsCert: "IMDS_WEBHOOK_TLS_CERT",
  tlsKey: "IMDS_WEBHOOK_TLS_KEY",
  sidecarImage: "IMDS_WEBHOOK_SIDECAR_IMAGE",
  config: "IMDS_WEBHOOK_CONFIG",
  memoryLimit: "IMDS_WEBHOOK_MEMORY_LIMIT",
} as const;

/** Where the webhook mounts things inside the sidecar container. */
export const SIDECAR_PATHS = {
  tokenDir: "/var/run/secrets/tokens",
  token: "/var/run/secrets/tokens/token",
  cloudInitDir: "/var/run/imds",
  /** One sub-directory per SSH key Secret, named after the Secret. */
  sshKeysDir: "/var/run/imds-ssh-keys",
  /** The admin password Secret's key, as the file `admin-password`. */
  adminPasswordDir: "/var/run/imds-admin",
  adminPassword: "/var/run/imds-admin/admin-password",
  /** An emptyDir: survives sidecar restarts, not the pod. */
  stateDir: "/var/run/imds-state",
  /** Downward API files that change while the pod runs: labels, annotations, network-status. */
  podInfoDir: "/var/run/imds-pod",
} as const;

/** File names inside SIDECAR_PATHS.podInfoDir. */
export const POD_INFO_FILES = {
  labels: "labels",
  annotations: "annotations",
  networkStatus: "network-status",
} as const;

export const DEFAULT_LISTEN_ADDR = `${METADATA_ADDRESS}:80`;
