import { assertEquals } from "./assert.ts";
import { type PodLike, sidecarProblems } from "./sidecar_container.ts";

function podWith(sidecar: Record<string, unknown>, init = true): PodLike {
  const container = {
    name: "imds-server",
    args: ["run"],
    restartPolicy: init ? "Always" : undefined,
    securityContext: {
      capabilities: { add: ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"], drop: ["ALL"] },
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsUser: 0,
    },
    ...sidecar,
  };
  return init
    ? { spec: { containers: [{ name: "compute" }], initContainers: [container] } }
    : { spec: { containers: [{ name: "compute" }, container] } };
}

Deno.test("pod: a correctly injected sidecar has no problems", () => {
  assertEquals(sidecarProblems(podWith({})), []);
  assertEquals(sidecarProblems(podWith({}, false)), []);
});

Deno.test("pod: missing or duplicated sidecars are counted", () => {
  assertEquals(sidecarProblems({ spec: { containers: [{ name: "compute" }] } }), [
    "expected one imds-server container, found 0",
  ]);
  const twice = podWith({});
  twice.spec!.containers!.push({ name: "imds-server" });
  assertEquals(sidecarProblems(twice), ["expected one imds-server container, found 2"]);
});

Deno.test("pod: extra privileges and a replaced entrypoint are each reported", () => {
  const problems = sidecarProblems(podWith({
    command: ["/bin/sh"],
    args: ["serve"],
    restartPolicy: undefined,
    securityContext: {
      capabilities: { add: ["NET_ADMIN", "SYS_ADMIN"] },
      readOnlyRootFilesystem: false,
      privileged: true,
    },
  }));
  assertEquals(problems, [
    "as an init container it must be a native sidecar (restartPolicy Always), has undefined",
    'command is set (["/bin/sh"]); the image entrypoint must run',
    'args are ["serve"], expected ["run"]',
    'capabilities added are ["NET_ADMIN","SYS_ADMIN"], expected ["NET_ADMIN","NET_BIND_SERVICE","NET_RAW"]',
    "capabilities do not drop ALL",
    "root filesystem is not read-only",
    "allowPrivilegeEscalation is not false",
    "container is privileged",
    "runAsUser is undefined, expected 0",
  ]);
});
