/**
 * The values the chart is rendered with in the tests: the defaults, and each
 * toggle flipped away from its default.
 */
import type { Values } from "../../testing/helm.ts";

/** Every sidecar, token and webhook setting changed from its default. */
export const CHANGED_SETTINGS: Values = {
  webhook: { maxRequestBytes: 1048576 },
  sidecar: {
    image: { repository: "registry.example/imds/sidecar", tag: "1.2.3", pullPolicy: "Always" },
    nativeSidecar: false,
    resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { cpu: "1", memory: "256Mi" } },
    logLevel: "debug",
    allowedAnnotations: ["example.com/owner", "team.example.com/*"],
    rateLimit: { requestsPerSecond: 2.5, burst: 7 },
    hopLimit: 2,
    sessionsRequired: true,
    network: {
      bridgeNames: ["k6t-eth0", "k6t-5e1ebc3c0a1"],
      arpResponder: false,
      bridgeIntercept: false,
      passt: false,
      guestRouteIdleSeconds: 90,
    },
  },
  token: { expirationSeconds: 7200, audiences: ["vault", "https://sts.example"] },
  vendorData: "#cloud-config\npackages: [htop]\n",
  vmSerialInjection: { enabled: false },
};

// deno-lint-ignore no-explicit-any
const changed = CHANGED_SETTINGS as any;

/** The webhook configuration that CHANGED_SETTINGS renders: every key of the config file. */
export const CHANGED_CONFIG: Record<string, unknown> = {
  maxRequestBytes: changed.webhook.maxRequestBytes,
  sidecar: {
    image: "registry.example/imds/sidecar:1.2.3",
    imagePullPolicy: "Always",
    nativeSidecar: false,
    resources: changed.sidecar.resources,
    logLevel: "debug",
    allowedAnnotations: changed.sidecar.allowedAnnotations,
    rateLimit: changed.sidecar.rateLimit,
    hopLimit: 2,
    sessionsRequired: true,
    network: changed.sidecar.network,
  },
  token: changed.token,
  vendorData: changed.vendorData,
  vmSerialInjection: false,
};

/** Named renders; each test picks the ones it needs. */
export const CASES: Record<string, Values> = {
  defaults: {},
  "vm webhook off": { vmSerialInjection: { enabled: false } },
  "pdb off": { webhook: { podDisruptionBudget: { enabled: false } } },
  "spread off": { webhook: { topologySpread: { enabled: false } } },
  "network policy on": { networkPolicy: { enabled: true } },
  "network policy with peers": {
    networkPolicy: {
      enabled: true,
      ingressFrom: [{ ipBlock: { cidr: "10.0.0.0/8" } }, {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
      }],
    },
  },
  "service monitor on": {
    metrics: { serviceMonitor: { enabled: true, interval: "15s", labels: { release: "prom" } } },
  },
  "existing cluster issuer": {
    tls: { issuerRef: { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" } },
  },
  "rsa keys": { tls: { privateKeyAlgorithm: "RSA" } },
  "opt-in label with Fail": {
    webhook: { pods: { failurePolicy: "Fail", requireOptInLabel: true, timeoutSeconds: 5 } },
  },
  "custom selectors": {
    webhook: {
      namespaceSelector: {
        excludeNamespaces: ["infra"],
        matchExpressions: [{ key: "imds", operator: "In", values: ["on"] }],
      },
      pods: {
        failurePolicy: "Fail",
        objectSelector: { matchLabels: { tier: "vms" } },
      },
    },
    vmSerialInjection: {
      failurePolicy: "Fail",
      timeoutSeconds: 3,
      objectSelector: { matchExpressions: [{ key: "imds", operator: "Exists" }] },
    },
  },
  "extras on": {
    commonLabels: { "example.com/tier": "platform" },
    commonAnnotations: { "example.com/owner": "vm-platform" },
    imagePullSecrets: [{ name: "regcred" }],
    webhook: {
      priorityClassName: "system-cluster-critical",
      image: { repository: "registry.example/imds/webhook", tag: "9.9.9", pullPolicy: "Always" },
      replicas: 3,
      podLabels: { "example.com/pod": "yes" },
      podAnnotations: { "example.com/scrape": "no" },
      nodeSelector: { "node-role.kubernetes.io/control-plane": "" },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{
              matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["amd64"] }],
            }],
          },
        },
      },
      tolerations: [{
        key: "node-role.kubernetes.io/control-plane",
        effect: "NoSchedule",
        operator: "Exists",
      }],
    },
    metrics: { serviceMonitor: { enabled: true } },
    networkPolicy: { enabled: true },
  },
  "all settings changed": CHANGED_SETTINGS,
  "fullname override": { fullnameOverride: "imds" },
};
