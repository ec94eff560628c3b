/**
 * The chart through real helm: lint, render with the defaults and with each
 * toggle flipped, validate every object against the API schemas, and check
 * what a cluster relies on (selectors, CA injection, failure policy, TLS
 * chain, security contexts, the webhook's configuration file).
 */
import { parse as parseYaml } from "yaml";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../testing/assert.ts";
import {
  CHART_DIR,
  type HelmBinary,
  type K8sObject,
  NAMESPACE,
  needsHelm,
  RELEASE,
  render,
  type Rendered,
  runHelm,
  template,
} from "../../testing/helm.ts";
import { schemaProblems } from "../../testing/k8s_schema.ts";
import { CASES, CHANGED_CONFIG, CHANGED_SETTINGS } from "./cases.ts";

const helm3 = await needsHelm("helm");
const helm4 = await needsHelm("helm4");

// Start every render at once (helm runs a few at a time); tests await theirs.
if (!helm3.ignore) { for (const values of Object.values(CASES)) template("helm", values); }
if (!helm4.ignore) { for (const values of Object.values(CASES)) template("helm4", values); }

const PREFIX = `${RELEASE}-kubevirt-imds`;
const WEBHOOK = `${PREFIX}-webhook`;
const TLS = `${PREFIX}-webhook-tls`;
const CA = `${PREFIX}-ca`;
const SERVICE_HOST = `${WEBHOOK}.${NAMESPACE}.svc`;
const CONFIG_KEYS = ["maxRequestBytes", "sidecar", "token", "vendorData", "vmSerialInjection"];

const defaults = (binary: HelmBinary = "helm") => render(binary, CASES.defaults);
const deploymentOf = (r: Rendered) => r.get("Deployment", WEBHOOK);
const podSpecOf = (r: Rendered) => deploymentOf(r).spec.template.spec;
const containerOf = (r: Rendered) => podSpecOf(r).containers[0];
const podWebhookOf = (r: Rendered) =>
  r.get("MutatingWebhookConfiguration", `${PREFIX}-pods`).webhooks[0];
const configOf = (r: Rendered): Record<string, unknown> =>
  parseYaml(r.get("ConfigMap", `${WEBHOOK}-config`).data["config.yaml"]);
/** The Secret (namespace/name) whose CA cert-manager injects into a webhook configuration. */
const injectedCaOf = (o: K8sObject) => o.metadata.annotations?.["cert-manager.io/inject-ca-from"];
const idOf = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
const sorted = (objects: K8sObject[]) =>
  [...objects].sort((a, b) => idOf(a).localeCompare(idOf(b)));
const ids = (objects: K8sObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

for (const binary of ["helm", "helm4"] as const) {
  const options = binary === "helm" ? helm3 : helm4;

  Deno.test({
    name: `${binary}: helm lint --strict passes with the defaults and with every toggle flipped`,
    ...options,
    async fn() {
      const results = await Promise.all(
        Object.entries(CASES).map(async ([name, values]) => {
          const file = await Deno.makeTempFile({ suffix: ".yaml" });
          await Deno.writeTextFile(file, JSON.stringify(values));
          const result = await runHelm(binary, ["lint", "--strict", CHART_DIR, "-f", file]);
          await Deno.remove(file);
          return { name, result };
        }),
      );
      for (const { name, result } of results) {
        assert(result.ok, `${binary} lint (${name}) failed:\n${result.stdout}${result.stderr}`);
        assertStringIncludes(result.stdout, "0 chart(s) failed");
      }
    },
  });

  Deno.test({
    name: `${binary}: every rendered object of every case matches its API schema`,
    ...options,
    async fn() {
      for (const [name, values] of Object.entries(CASES)) {
        const rendered = await render(binary, values);
        const problems = rendered.objects.flatMap(schemaProblems);
        assertEquals(problems, [], `case "${name}"`);
      }
    },
  });
}

Deno.test({
  name: "helm v3 and helm v4 render the same objects for every case",
  ignore: helm3.ignore || helm4.ignore,
  async fn() {
    for (const [name, values] of Object.entries(CASES)) {
      const [v3, v4] = await Promise.all([render("helm", values), render("helm4", values)]);
      assertEquals(sorted(v4.objects), sorted(v3.objects), `case "${name}"`);
    }
  },
});

Deno.test({
  name: "the defaults deploy the webhook, its TLS chain and both webhook configurations, no RBAC",
  ...helm3,
  async fn() {
    const r = await defaults();
    assertEquals(
      ids(r.objects),
      [
        `Certificate/${CA}`,
        `Certificate/${TLS}`,
        `ConfigMap/${WEBHOOK}-config`,
        `Deployment/${WEBHOOK}`,
        `Issuer/${CA}`,
        `Issuer/${PREFIX}-selfsigned`,
        `MutatingWebhookConfiguration/${PREFIX}-pods`,
        `MutatingWebhookConfiguration/${PREFIX}-vms`,
        `Pod/${PREFIX}-test-tls`,
        `PodDisruptionBudget/${WEBHOOK}`,
        `Service/${WEBHOOK}`,
        `ServiceAccount/${WEBHOOK}`,
      ].sort(),
    );
    for (const o of r.objects) {
      if (o.kind !== "MutatingWebhookConfiguration") {
        assertEquals(o.metadata.namespace, NAMESPACE, `${o.kind} namespace`);
      }
    }
  },
});

Deno.test({
  name: "the webhook container gets the start-up flags, mounts and port of the contract",
  ...helm3,
  async fn() {
    const r = await defaults();
    const c = containerOf(r);
    assertEquals(c.image, "ghcr.io/kubevirt-imds/webhook:0.1.0");
    assertEquals(c.args, [
      "--listen=0.0.0.0:8443",
      "--tls-cert=/etc/imds-webhook/tls/tls.crt",
      "--tls-key=/etc/imds-webhook/tls/tls.key",
      "--config=/etc/imds-webhook/config/config.yaml",
    ]);
    assertEquals(c.ports, [{ name: "https", containerPort: 8443, protocol: "TCP" }]);
    const mounts = Object.fromEntries(
      c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
    );
    assertEquals(mounts.tls, "/etc/imds-webhook/tls");
    assertEquals(mounts.config, "/etc/imds-webhook/config");
    const volumes = Object.fromEntries(
      podSpecOf(r).volumes.map((v: { name: string }) => [v.name, v]),
    );
    assertEquals(volumes.tls.secret.secretName, TLS);
    assertEquals(volumes.config.configMap.name, `${WEBHOOK}-config`);
    assertEquals(
      c.livenessProbe.httpGet,
      { path: "/healthz", port: "https", scheme: "HTTPS" },
    );
    assertEquals(c.readinessProbe.httpGet, { path: "/readyz", port: "https", scheme: "HTTPS" });
    assert(c.resources.requests.cpu && c.resources.limits.memory, "webhook resources are set");
  },
});

Deno.test({
  name: "the webhook runs under the restricted security profile with no API access",
  ...helm3,
  async fn() {
    const r = await defaults();
    const pod = podSpecOf(r);
    const c = containerOf(r);
    assertEquals(pod.securityContext.runAsNonRoot, true);
    assertEquals(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
    assertEquals(c.securityContext.allowPrivilegeEscalation, false);
    assertEquals(c.securityContext.readOnlyRootFilesystem, true);
    assertEquals(c.securityContext.runAsNonRoot, true);
    assertEquals(c.securityContext.capabilities, { drop: ["ALL"] });
    assertEquals(c.securityContext.seccompProfile, { type: "RuntimeDefault" });
    assertEquals(pod.automountServiceAccountToken, false);
    assertEquals(pod.serviceAccountName, WEBHOOK);
    assertEquals(r.get("ServiceAccount", WEBHOOK).automountServiceAccountToken, false);
    const rbac = r.objects.filter((o) => o.apiVersion.startsWith("rbac.authorization.k8s.io"));
    assertEquals(ids(rbac), []);
  },
});

Deno.test({
  name: "two replicas are spread across nodes and protected by a PodDisruptionBudget",
  ...helm3,
  async fn() {
    const r = await defaults();
    const d = deploymentOf(r);
    const selector = d.spec.selector.matchLabels;
    assertEquals(d.spec.replicas, 2);
    assertEquals(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const spread = d.spec.template.spec.topologySpreadConstraints;
    assertEquals(spread.length, 1);
    assertEquals(spread[0].topologyKey, "kubernetes.io/hostname");
    assertEquals(spread[0].labelSelector.matchLabels, selector);
    const anti = d.spec.template.spec.affinity.podAntiAffinity
      .preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assertEquals(anti.topologyKey, "kubernetes.io/hostname");
    assertEquals(anti.labelSelector.matchLabels, selector);
    const pdb = r.get("PodDisruptionBudget", WEBHOOK);
    assertEquals(pdb.spec.maxUnavailable, 1);
    assertEquals(pdb.spec.selector.matchLabels, selector);
    for (const [key, value] of Object.entries(selector)) {
      assertEquals(d.spec.template.metadata.labels[key], value, `pod label ${key}`);
    }
    assertEquals(r.get("Service", WEBHOOK).spec.selector, selector);
  },
});

Deno.test({
  name: "the Service sends port 443 to the container's https port",
  ...helm3,
  async fn() {
    const r = await defaults();
    assertEquals(r.get("Service", WEBHOOK).spec.ports, [
      { name: "https", port: 443, targetPort: "https", protocol: "TCP", appProtocol: "https" },
    ]);
  },
});

Deno.test({
  name:
    "the pod webhook: CREATE of virt-launcher pods only, outside system namespaces, never blocking",
  ...helm3,
  async fn() {
    const r = await defaults();
    const config = r.get("MutatingWebhookConfiguration", `${PREFIX}-pods`);
    assertEquals(injectedCaOf(config), `${NAMESPACE}/${TLS}`);
    const hook = config.webhooks[0];
    assertEquals(hook.rules, [{
      apiGroups: [""],
      apiVersions: ["v1"],
      operations: ["CREATE"],
      resources: ["pods"],
      scope: "Namespaced",
    }]);
    assertEquals(hook.objectSelector, { matchLabels: { "kubevirt.io": "virt-launcher" } });
    assertEquals(hook.namespaceSelector, {
      matchExpressions: [{
        key: "kubernetes.io/metadata.name",
        operator: "NotIn",
        values: ["kube-system", "kube-public", "kube-node-lease", "cert-manager", NAMESPACE],
      }],
    });
    assertEquals(hook.failurePolicy, "Ignore");
    assertEquals(hook.sideEffects, "None");
    assertEquals(hook.admissionReviewVersions, ["v1"]);
    assertEquals(hook.timeoutSeconds, 10);
    assertEquals(hook.clientConfig.caBundle, undefined, "cert-manager injects the CA bundle");
    assertEquals(hook.clientConfig.service, {
      name: WEBHOOK,
      namespace: NAMESPACE,
      path: "/mutate-pod",
      port: 443,
    });
  },
});

Deno.test({
  name: "failurePolicy Fail is refused unless the webhook is narrowed to opted-in pods",
  ...helm3,
  async fn() {
    const result = await template("helm", { webhook: { pods: { failurePolicy: "Fail" } } });
    assert(!result.ok, "rendering must fail");
    assertMatch(result.stderr, /failurePolicy=Fail would stop EVERY VM from starting/);
    assertMatch(result.stderr, /requireOptInLabel=true/);

    const labelled = podWebhookOf(await render("helm", CASES["opt-in label with Fail"]));
    assertEquals(labelled.failurePolicy, "Fail");
    assertEquals(labelled.timeoutSeconds, 5);
    assertEquals(labelled.objectSelector, {
      matchLabels: { "kubevirt.io": "virt-launcher", "imds.kubevirt.io/enabled": "true" },
    });

    const custom = podWebhookOf(await render("helm", CASES["custom selectors"]));
    assertEquals(custom.failurePolicy, "Fail");
    assertEquals(custom.objectSelector, {
      matchLabels: { "kubevirt.io": "virt-launcher", tier: "vms" },
    });
  },
});

Deno.test({
  name: "namespace selectors are overridable and always exclude the release namespace",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["custom selectors"]);
    const expected = {
      matchExpressions: [
        { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["infra", NAMESPACE] },
        { key: "imds", operator: "In", values: ["on"] },
      ],
    };
    assertEquals(podWebhookOf(r).namespaceSelector, expected);
    const vms = r.get("MutatingWebhookConfiguration", `${PREFIX}-vms`).webhooks[0];
    assertEquals(vms.namespaceSelector, expected);
    assertEquals(vms.failurePolicy, "Fail");
    assertEquals(vms.timeoutSeconds, 3);
    assertEquals(vms.objectSelector, { matchExpressions: [{ key: "imds", operator: "Exists" }] });
  },
});

Deno.test({
  name: "the VM webhook sees VM create/update and VMI create, and its toggle removes it",
  ...helm3,
  async fn() {
    const r = await defaults();
    const config = r.get("MutatingWebhookConfiguration", `${PREFIX}-vms`);
    assertEquals(injectedCaOf(config), `${NAMESPACE}/${TLS}`);
    const hook = config.webhooks[0];
    assertEquals(hook.rules, [
      {
        apiGroups: ["kubevirt.io"],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["virtualmachines"],
        scope: "Namespaced",
      },
      {
        apiGroups: ["kubevirt.io"],
        apiVersions: ["v1"],
        operations: ["CREATE"],
        resources: ["virtualmachineinstances"],
        scope: "Namespaced",
      },
    ]);
    assertEquals(hook.clientConfig.service.path, "/mutate-vm");
    assertEquals(hook.failurePolicy, "Ignore");
    assertEquals(hook.sideEffects, "None");
    assertEquals(hook.admissionReviewVersions, ["v1"]);
    assertEquals(configOf(r).vmSerialInjection, true);

    const off = await render("helm", CASES["vm webhook off"]);
    assertEquals(off.ofKind("MutatingWebhookConfiguration").map((o) => o.metadata.name), [
      `${PREFIX}-pods`,
    ]);
    assertEquals(configOf(off).vmSerialInjection, false);
  },
});

Deno.test({
  name: "cert-manager: self-signed bootstrap, CA, CA issuer, then the serving certificate",
  ...helm3,
  async fn() {
    const r = await defaults();
    assertEquals(r.get("Issuer", `${PREFIX}-selfsigned`).spec, { selfSigned: {} });
    const ca = r.get("Certificate", CA).spec;
    assertEquals(ca.isCA, true);
    assertEquals(ca.secretName, CA);
    assertEquals(ca.issuerRef, {
      group: "cert-manager.io",
      kind: "Issuer",
      name: `${PREFIX}-selfsigned`,
    });
    assertEquals(r.get("Issuer", CA).spec, { ca: { secretName: CA } });
    const serving = r.get("Certificate", TLS).spec;
    assertEquals(serving.secretName, TLS);
    assertEquals(serving.issuerRef, { group: "cert-manager.io", kind: "Issuer", name: CA });
    assertEquals(serving.dnsNames, [
      WEBHOOK,
      `${WEBHOOK}.${NAMESPACE}`,
      SERVICE_HOST,
      `${SERVICE_HOST}.cluster.local`,
    ]);
    assert(serving.usages.includes("server auth"), "serving certificate is for server auth");
    assertEquals(serving.privateKey.algorithm, "ECDSA");
    assertEquals(serving.privateKey.encoding, "PKCS8");
    assertEquals(r.ofKind("Secret"), [], "no certificate material is generated by the chart");

    const rsa = await render("helm", CASES["rsa keys"]);
    assertEquals(rsa.get("Certificate", TLS).spec.privateKey.size, 2048);
    assertEquals(rsa.get("Certificate", CA).spec.privateKey.algorithm, "RSA");
  },
});

Deno.test({
  name: "an existing ClusterIssuer replaces the chart's own CA chain",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["existing cluster issuer"]);
    assertEquals(ids(r.ofKind("Issuer")), []);
    assertEquals(ids(r.ofKind("Certificate")), [`Certificate/${TLS}`]);
    assertEquals(r.get("Certificate", TLS).spec.issuerRef, {
      group: "cert-manager.io",
      kind: "ClusterIssuer",
      name: "corp-ca",
    });
    assertEquals(
      injectedCaOf(r.get("MutatingWebhookConfiguration", `${PREFIX}-pods`)),
      `${NAMESPACE}/${TLS}`,
    );
  },
});

Deno.test({
  name: "the configuration file carries the contract's keys and the default values",
  ...helm3,
  async fn() {
    const config = configOf(await defaults());
    assertEquals(Object.keys(config).sort(), CONFIG_KEYS);
    assertEquals(config, {
      maxRequestBytes: 4194304,
      sidecar: {
        image: "ghcr.io/kubevirt-imds/sidecar:0.1.0",
        imagePullPolicy: "IfNotPresent",
        nativeSidecar: true,
        resources: { requests: { cpu: "10m", memory: "48Mi" }, limits: { memory: "128Mi" } },
        logLevel: "info",
        allowedAnnotations: [],
        rateLimit: { requestsPerSecond: 10, burst: 20 },
        hopLimit: 1,
        sessionsRequired: false,
        network: {
          bridgeNames: [],
          arpResponder: true,
          bridgeIntercept: true,
          passt: true,
          guestRouteIdleSeconds: 300,
        },
      },
      token: { expirationSeconds: 3600, audiences: [] },
      vendorData: "",
      vmSerialInjection: true,
    });
  },
});

Deno.test({
  name: "every webhook and sidecar value reaches the configuration file unchanged",
  ...helm3,
  async fn() {
    const config = configOf(await render("helm", CHANGED_SETTINGS));
    assertEquals(config, CHANGED_CONFIG);
  },
});

Deno.test({
  name: "the pods roll when, and only when, the configuration file changes",
  ...helm3,
  async fn() {
    const annotation = (r: Rendered) =>
      deploymentOf(r).spec.template.metadata.annotations["checksum/config"];
    const base = await defaults();
    const text = base.get("ConfigMap", `${WEBHOOK}-config`).data["config.yaml"];
    assertEquals(annotation(base), await sha256Hex(text.replace(/\n$/, "")));
    assertNotEqual(annotation(await render("helm", CHANGED_SETTINGS)), annotation(base));
    assertEquals(annotation(await render("helm", CASES["pdb off"])), annotation(base));
  },
});

function assertNotEqual(a: string, b: string): void {
  assert(a !== b, `expected ${a} to differ from ${b}`);
}

Deno.test({
  name: "disabled toggles remove their objects and fields",
  ...helm3,
  async fn() {
    const base = await defaults();
    assertEquals(base.ofKind("NetworkPolicy"), []);
    assertEquals(base.ofKind("ServiceMonitor"), []);
    assertEquals(podSpecOf(base).priorityClassName, undefined);
    assertEquals(podSpecOf(base).imagePullSecrets, undefined);
    assertEquals((await render("helm", CASES["pdb off"])).ofKind("PodDisruptionBudget"), []);
    const spreadOff = await render("helm", CASES["spread off"]);
    assertEquals(podSpecOf(spreadOff).topologySpreadConstraints, undefined);
  },
});

Deno.test({
  name: "the NetworkPolicy admits only the HTTPS port and allows no egress",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["network policy on"]);
    const policy = r.get("NetworkPolicy", WEBHOOK).spec;
    assertEquals(policy.podSelector.matchLabels, deploymentOf(r).spec.selector.matchLabels);
    assertEquals(policy.policyTypes, ["Ingress", "Egress"]);
    assertEquals(policy.ingress, [{ ports: [{ port: "https", protocol: "TCP" }] }]);
    assertEquals(policy.egress, []);

    const peers = await render("helm", CASES["network policy with peers"]);
    const from = peers.get("NetworkPolicy", WEBHOOK).spec.ingress[0].from;
    assertEquals(from.length, 3);
    assertEquals(from[0], { ipBlock: { cidr: "10.0.0.0/8" } });
    const testPod = peers.get("Pod", `${PREFIX}-test-tls`);
    const allowsTestPod = from[2].podSelector.matchLabels;
    for (const [key, value] of Object.entries(allowsTestPod)) {
      assertEquals(testPod.metadata.labels?.[key], value, `test pod label ${key}`);
    }
  },
});

Deno.test({
  name: "the ServiceMonitor scrapes /metrics over HTTPS, verifying the serving certificate",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["service monitor on"]);
    const monitor = r.get("ServiceMonitor", WEBHOOK);
    assertEquals(monitor.apiVersion, "monitoring.coreos.com/v1");
    assertEquals(monitor.metadata.labels?.release, "prom");
    assertEquals(monitor.spec.selector.matchLabels, r.get("Service", WEBHOOK).spec.selector);
    assertEquals(monitor.spec.namespaceSelector, { matchNames: [NAMESPACE] });
    const [endpoint] = monitor.spec.endpoints;
    assertEquals(endpoint.port, r.get("Service", WEBHOOK).spec.ports[0].name);
    assertEquals(endpoint.scheme, "https");
    assertEquals(endpoint.path, "/metrics");
    assertEquals(endpoint.interval, "15s");
    assertEquals(endpoint.tlsConfig, {
      serverName: SERVICE_HOST,
      ca: { secret: { name: TLS, key: "ca.crt" } },
    });
  },
});

Deno.test({
  name: "extra labels, annotations, pull secrets, priority class and image reach the objects",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["extras on"]);
    for (const o of r.objects) {
      const where = `${o.kind}/${o.metadata.name}`;
      assertEquals(o.metadata.labels?.["example.com/tier"], "platform", where);
      assertEquals(o.metadata.annotations?.["example.com/owner"], "vm-platform", where);
    }
    const pod = podSpecOf(r);
    const template = deploymentOf(r).spec.template.metadata;
    assertEquals(template.labels["example.com/tier"], "platform");
    assertEquals(template.labels["example.com/pod"], "yes");
    assertEquals(template.annotations["example.com/scrape"], "no");
    assertEquals(pod.priorityClassName, "system-cluster-critical");
    assertEquals(pod.imagePullSecrets, [{ name: "regcred" }]);
    assertEquals(r.get("ServiceAccount", WEBHOOK).imagePullSecrets, [{ name: "regcred" }]);
    assertEquals(r.get("Pod", `${PREFIX}-test-tls`).spec.imagePullSecrets, [{ name: "regcred" }]);
    assertEquals(pod.nodeSelector, { "node-role.kubernetes.io/control-plane": "" });
    assertEquals(pod.tolerations[0].key, "node-role.kubernetes.io/control-plane");
    assertEquals(Object.keys(pod.affinity), ["nodeAffinity"], "own affinity replaces the default");
    assertEquals(deploymentOf(r).spec.replicas, 3);
    assertEquals(containerOf(r).image, "registry.example/imds/webhook:9.9.9");
    assertEquals(containerOf(r).imagePullPolicy, "Always");
  },
});

Deno.test({
  name: "the helm test pod checks /healthz and /readyz over TLS with the serving CA",
  ...helm3,
  async fn() {
    const r = await defaults();
    const pod = r.get("Pod", `${PREFIX}-test-tls`);
    assertEquals(pod.metadata.annotations?.["helm.sh/hook"], "test");
    assertEquals(pod.spec.restartPolicy, "Never");
    const c = pod.spec.containers[0];
    assertMatch(c.image, /^docker\.io\/curlimages\/curl:\d+\.\d+\.\d+$/);
    const script = c.args.join("\n");
    assertStringIncludes(script, "--cacert /etc/imds-webhook/tls/ca.crt");
    assertStringIncludes(script, `https://${SERVICE_HOST}:443$path`);
    assertStringIncludes(script, "for path in /healthz /readyz");
    assertStringIncludes(script, "--fail");
    assertEquals(pod.spec.volumes[0].secret, {
      secretName: TLS,
      items: [{ key: "ca.crt", path: "ca.crt" }],
    });
    assertEquals(c.volumeMounts[0].mountPath, "/etc/imds-webhook/tls");
    assertEquals(c.securityContext.allowPrivilegeEscalation, false);
    assertEquals(c.securityContext.capabilities, { drop: ["ALL"] });
    assertEquals(pod.spec.securityContext.runAsNonRoot, true);
  },
});

Deno.test({
  name: "a fullname override renames every object and keeps the references consistent",
  ...helm3,
  async fn() {
    const r = await render("helm", CASES["fullname override"]);
    for (const o of r.objects) assertMatch(o.metadata.name, /^imds-/, `${o.kind} name`);
    const hook = r.get("MutatingWebhookConfiguration", "imds-pods").webhooks[0];
    assertEquals(hook.clientConfig.service.name, "imds-webhook");
    assertEquals(r.get("Service", "imds-webhook").metadata.name, "imds-webhook");
    assertEquals(
      injectedCaOf(r.get("MutatingWebhookConfiguration", "imds-pods")),
      `${NAMESPACE}/imds-webhook-tls`,
    );
    assertEquals(
      r.get("Certificate", "imds-webhook-tls").spec.dnsNames[2],
      `imds-webhook.${NAMESPACE}.svc`,
    );
  },
});

Deno.test({
  name: "NOTES name what was installed and the next two steps",
  ...helm4,
  async fn() {
    const result = await runHelm("helm4", [
      "install",
      RELEASE,
      CHART_DIR,
      "--namespace",
      NAMESPACE,
      "--dry-run=client",
    ]);
    assert(result.ok, result.stderr);
    const notes = result.stdout.slice(result.stdout.indexOf("NOTES:"));
    assertStringIncludes(notes, `Deployment ${WEBHOOK}`);
    assertStringIncludes(notes, `helm test ${RELEASE} -n ${NAMESPACE}`);
    assertStringIncludes(notes, 'imds.kubevirt.io/enabled: "true"');
    assertStringIncludes(notes, 'curl -H "Metadata: true" http://169.254.169.254/v1/identity');
    assert(!notes.includes("labels:"), "no opt-in label is asked for by default");

    const labelled = await runHelm("helm4", [
      "install",
      RELEASE,
      CHART_DIR,
      "--namespace",
      NAMESPACE,
      "--dry-run=client",
      "--set",
      "webhook.pods.requireOptInLabel=true",
    ]);
    assert(labelled.ok, labelled.stderr);
    assertMatch(labelled.stdout, /labels:\n\s+imds\.kubevirt\.io\/enabled: "true"/);
  },
});

Deno.test({
  name: "a native sidecar on a cluster older than 1.29 is refused; a plain sidecar is allowed",
  ...helm3,
  async fn() {
    const old = await template("helm", {}, ["--kube-version", "1.28.5"]);
    assert(!old.ok, "rendering must fail");
    assertMatch(old.stderr, /needs Kubernetes 1\.29 or newer; this cluster is v1\.28\.5/);
    const plain = await template("helm", { sidecar: { nativeSidecar: false } }, [
      "--kube-version",
      "1.28.5",
    ]);
    assert(plain.ok, plain.stderr);
    const current = await template("helm", {}, ["--kube-version", "1.29.0"]);
    assert(current.ok, current.stderr);
  },
});
