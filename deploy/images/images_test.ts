/**
 * Static checks of the container images (no container engine runs here):
 * what the Dockerfiles COPY exists and is in the build context, every module
 * the services load is copied, the Deno version and runtime flags agree with
 * CI and deno.json, and the entrypoints, users and labels agree with what the
 * chart and the webhook run.
 */

import { parse as parseYaml } from "yaml";
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { denoRunTask } from "../../testing/deno_tasks.ts";
import { envFrom } from "../../services/shared/settings.ts";
import { loadWebhookConfig } from "../../services/webhook/config.ts";
import { buildSidecar } from "../../services/webhook/sidecar_spec.ts";
import { sidecarProblems } from "../../testing/sidecar_container.ts";
import { needsHelm, render } from "../../testing/helm.ts";
import { SIDECAR_BUNDLE, SIDECAR_SOURCES } from "../../services/sidecar/bundle.ts";
import {
  copiesOf,
  type Dockerfile,
  entrypointOf,
  inBuildContext,
  labelsOf,
  parseDockerfile,
  parseDockerignore,
  runsOf,
  shellWords,
  type Stage,
  substitute,
  userOf,
} from "./dockerfile.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));
const exists = (path: string) => {
  try {
    Deno.statSync(new URL(path, ROOT));
    return true;
  } catch {
    return false;
  }
};

const ignoreRules = parseDockerignore(read(".dockerignore"));
const ciDenoVersion = /^DENO_VERSION=(\S+)$/m.exec(read(".ci/run"))?.[1];
const appVersion = String(parseYaml(read("chart/Chart.yaml")).appVersion);

interface Image {
  service: "sidecar" | "webhook";
  dockerfile: Dockerfile;
  build: Stage;
  final: Stage;
  /** `deno compile` words after `compile`. */
  compile: string[];
  /**
   * The source modules the binary's program is made from, and the build step's own modules
   * (tools that run in the build stage only).
   */
  sources: { program: string[]; buildTools: string[] };
}

/** OUTDIR of the build stage's `deno run -A services/sidecar/bundle.ts OUTDIR`, if it has one. */
function sidecarBundleDir(build: Stage): string | undefined {
  const words = runsOf(build).map(shellWords)
    .find((w) => w[0] === "deno" && w[1] === "run" && w.includes("services/sidecar/bundle.ts"));
  if (words === undefined) return undefined;
  assertEquals(words.slice(2), ["-A", "services/sidecar/bundle.ts", words.at(-1)!]);
  return words.at(-1);
}

function loadImage(service: Image["service"]): Image {
  const dockerfile = parseDockerfile(read(`Dockerfile.${service}`));
  const build = dockerfile.stages[0];
  const final = dockerfile.stages.at(-1)!;
  const compileRuns = runsOf(build).filter((r) => /^deno compile\b/.test(r));
  assertEquals(compileRuns.length, 1, `Dockerfile.${service}: one deno compile step`);
  const bundled = sidecarBundleDir(build) !== undefined;
  return {
    service,
    dockerfile,
    build,
    final,
    compile: shellWords(compileRuns[0]).slice(2),
    sources: bundled
      ? { program: Object.values(SIDECAR_SOURCES), buildTools: ["services/sidecar/bundle.ts"] }
      : { program: [`services/${service}/main.ts`], buildTools: [] },
  };
}

const images = [loadImage("sidecar"), loadImage("webhook")];

/**
 * Flags of `deno compile` that concern the executable, not the program: its
 * output file, and `--no-code-cache`, which the images need (see below).
 */
const COMPILE_ONLY =
  /^(--output|-o|--target|--include|--exclude|--icon|--no-terminal|--self-extracting|--no-code-cache)(=|$)/;

/** Those of COMPILE_ONLY written with their value as the next word. */
const COMPILE_ONLY_WITH_VALUE = /^(--target|--include|--exclude|--icon)$/;

function compileParts(image: Image): { flags: string[]; output: string; script: string } {
  const words = image.compile;
  const flags: string[] = [];
  let output = "";
  let i = 0;
  for (; i < words.length && words[i].startsWith("-"); i++) {
    const word = words[i];
    if (word === "--output" || word === "-o") output = words[++i];
    else if (word.startsWith("--output=")) output = word.slice("--output=".length);
    else if (COMPILE_ONLY_WITH_VALUE.test(word)) i++; // its value is the next word
    else if (!COMPILE_ONLY.test(word)) flags.push(word);
  }
  return { flags, output, script: words[i] };
}

for (const image of images) {
  const name = `Dockerfile.${image.service}`;

  Deno.test(`${name}: Deno version is the one CI installs, base images pinned`, () => {
    assert(ciDenoVersion, ".ci/run sets DENO_VERSION");
    assertEquals(image.dockerfile.globalArgs.DENO_VERSION, ciDenoVersion);
    assertEquals(image.build.image, `denoland/deno:debian-${ciDenoVersion}`);
    const stageNames = new Set<string>();
    for (const stage of image.dockerfile.stages) {
      if (stage.image !== "scratch" && !stageNames.has(stage.image)) {
        assertMatch(
          stage.image,
          /:[\w.-]*\d+\.\d+[\w.-]*$|@sha256:[0-9a-f]{64}$/,
          `${name}: ${stage.image} is not pinned`,
        );
      }
      if (stage.name) stageNames.add(stage.name);
    }
  });

  Deno.test(`${name}: every COPY source exists and is in the build context`, () => {
    for (const stage of image.dockerfile.stages) {
      for (const copy of copiesOf(stage).filter((c) => c.from === undefined)) {
        for (const source of copy.sources) {
          if (/[*?]/.test(source)) continue; // optional globs (deno.lock*) may match nothing
          assert(exists(source), `${name} line ${copy.line}: ${source} does not exist`);
          assert(
            inBuildContext(ignoreRules, source),
            `${name} line ${copy.line}: .dockerignore leaves ${source} out of the build context`,
          );
        }
      }
    }
  });

  Deno.test(`${name}: every module the service loads is copied into the build stage`, async () => {
    const { flags } = compileParts(image);
    // Resolve modules as the compile step does (with or without deno.json).
    const resolution = flags.filter((f) => /^(--no-config|--config|--import-map)(=|$)/.test(f));
    const graph = async (script: string): Promise<string[]> => {
      const output = await new Deno.Command("deno", {
        args: ["info", "--json", ...resolution, script],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(output.success, `deno info ${script}: ${new TextDecoder().decode(output.stderr)}`);
      const info = JSON.parse(new TextDecoder().decode(output.stdout));
      const broken = (info.modules as Array<{ specifier: string; error?: string }>)
        .filter((m) => m.error !== undefined).map((m) => m.error);
      assertEquals(broken, [], `${name}: ${script} cannot be compiled`);
      const rootPath = new URL(ROOT).pathname;
      const local = (info.modules as Array<{ specifier: string }>)
        .map((m) => m.specifier)
        .filter((s) => s.startsWith(`file://${rootPath}`))
        .map((s) => s.slice(`file://${rootPath}`.length));
      assert(local.includes(script), `${script} is in its own module graph`);
      return local;
    };
    const program = (await Promise.all(image.sources.program.map(graph))).flat();
    const tools = (await Promise.all(image.sources.buildTools.map(graph))).flat();
    const copied = copiesOf(image.build).filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const path of [...program, ...tools]) {
      assert(
        copied.some((source) => source.endsWith("/") ? path.startsWith(source) : path === source),
        `${name}: ${path} is loaded by the build but not copied`,
      );
      assert(inBuildContext(ignoreRules, path), `${name}: .dockerignore leaves out ${path}`);
    }
    // The image holds the binary and glibc only: no module of the program may start another
    // program (no iproute2, nft, sh).
    for (const path of program) {
      const source = read(path);
      for (const spawn of ["Deno.Command(", "Deno.run(", "node:child_process"]) {
        assert(!source.includes(spawn), `${path} uses ${spawn}, but ${name} has no programs`);
      }
    }
    // The import map and config the compile step reads.
    for (const file of ["deno.json", "import_map.json"]) {
      assert(copied.includes(file), `${name}: ${file} is not copied`);
    }
  });

  Deno.test(`${name}: the binary is compiled with the runtime flags of its deno.json task`, () => {
    const { flags, output, script } = compileParts(image);
    const task = denoRunTask(image.service);
    assertEquals(task.script, `services/${image.service}/main.ts`);
    const bundle = sidecarBundleDir(image.build);
    if (image.service === "sidecar") {
      assert(bundle !== undefined, `${name}: the image compiles the bundle the tests run`);
    }
    if (bundle === undefined) {
      assertEquals(script, task.script);
    } else {
      // The compiled program is the bundle the tests run, with its worker thread's module.
      assertEquals(script, `${bundle}/${SIDECAR_BUNDLE.main}`);
      const included = image.compile.filter((_, i) => image.compile[i - 1] === "--include");
      assertEquals(included, [`${bundle}/${SIDECAR_BUNDLE.arpWorker}`]);
    }
    // Read-only root filesystem, no /tmp: the binary must not try to write a code cache.
    assert(image.compile.includes("--no-code-cache"), `${name}: compile without --no-code-cache`);
    assertEquals([...flags].sort(), [...task.flags].sort(), `${name}: runtime flags differ`);
    const rootfs = runsOf(image.build).map(shellWords).find((w) => w[1]?.endsWith("rootfs.sh"));
    assert(rootfs, `${name}: the build stage runs rootfs.sh`);
    assertEquals(rootfs.slice(2), [output, "/rootfs"], `${name}: rootfs.sh packs the binary`);
    const binary = output.split("/").at(-1)!;
    assertEquals(entrypointOf(image.final), [`/usr/local/bin/${binary}`]);
  });

  Deno.test(`${name}: final image holds only the packed root filesystem, labelled`, () => {
    assertEquals(image.final.image, "scratch");
    const copies = copiesOf(image.final);
    assertEquals(copies.map((c) => [c.from, c.sources, c.destination]), [
      [image.build.name, ["/rootfs/"], "/"],
    ]);
    const labels = labelsOf(image.final);
    assertEquals(labels["org.opencontainers.image.version"], appVersion);
    assertMatch(
      labels["org.opencontainers.image.source"],
      /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/,
    );
    assertEquals(substitute("${VERSION}", image.final.args), appVersion);
  });
}

Deno.test({
  name: "images: the chart's webhook runs its image's entrypoint and injects the sidecar image",
  ...(await needsHelm("helm")),
  fn: async () => {
    const [sidecar, webhook] = images;
    const rendered = await render("helm");
    const [deployment] = rendered.ofKind("Deployment");
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    assertEquals(container.command, undefined, "the chart must not override the entrypoint");
    assertEquals(container.image, `ghcr.io/kubevirt-imds/webhook:${appVersion}`);
    const user = `${container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser}:${
      container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup
    }`;
    assertEquals(user, userOf(webhook.final));
    assertEquals(userOf(webhook.final), "65532:65532");
    assertEquals(container.securityContext?.readOnlyRootFilesystem, true);

    // The webhook reads the chart's arguments and mounted config file as it will in the pod.
    const configMap = rendered.ofKind("ConfigMap").find((c) => c.data?.["config.yaml"]);
    assert(configMap, "the chart renders the webhook configuration");
    const files: Record<string, string> = {
      "/etc/imds-webhook/config/config.yaml": configMap.data["config.yaml"],
    };
    const loaded = loadWebhookConfig({
      args: container.args,
      env: envFrom({}),
      readFile: (path) => {
        if (!(path in files)) throw new Error(`${path} is not mounted`);
        return files[path];
      },
    });
    assert(!loaded.help);
    const config = loaded.config;
    assertEquals([config.tlsCertPath, config.tlsKeyPath], [
      "/etc/imds-webhook/tls/tls.crt",
      "/etc/imds-webhook/tls/tls.key",
    ]);
    const port = container.ports.find((p: { name: string }) => p.name === "https");
    assertEquals(config.listen.port, port.containerPort);
    const mounts = (container.volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath);
    assert(mounts.includes("/etc/imds-webhook/tls"), "TLS Secret mounted where the flags point");

    // What it injects: the other image of this release, run by its entrypoint with `run`.
    assertEquals(config.sidecar.image, `ghcr.io/kubevirt-imds/sidecar:${appVersion}`);
    const injected = buildSidecar(config, { sources: {} }, {
      token: "imds-token",
      cloudInit: "imds-cloud-init",
    }).container as Record<string, unknown>;
    assertEquals(sidecarProblems({ spec: { initContainers: [injected as never] } }), []);
    const securityContext = injected.securityContext as { runAsUser: number };
    assertEquals(
      `${securityContext.runAsUser}:${securityContext.runAsUser}`,
      userOf(sidecar.final),
    );
    assertMatch(read("services/sidecar/main.ts"), /case "run":/, "the sidecar has a `run` command");
  },
});
