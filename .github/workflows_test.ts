/**
 * The GitHub workflows cannot run here; what can be checked is: they parse,
 * every action is pinned, every file and script they use exists, their shell
 * is valid, and the release publishes exactly what the chart and the README
 * point users at (image repositories from chart/values.yaml, tag = chart
 * appVersion = chart version, the chart's OCI reference).
 */

import { parse as parseYaml } from "yaml";
import { assert, assertEquals } from "../testing/assert.ts";

const ROOT = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
  id?: string;
}
interface Job {
  "runs-on": string;
  needs?: string | string[];
  steps: Step[];
  strategy?: { matrix: Record<string, string[]> };
  permissions?: Record<string, string>;
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

const WORKFLOWS = ["ci.yml", "release.yml"];
const workflows = new Map<string, Workflow>(
  WORKFLOWS.map((file) => [file, parseYaml(read(`.github/workflows/${file}`))]),
);
const release = workflows.get("release.yml")!;
const chart = parseYaml(read("chart/Chart.yaml"));
const values = parseYaml(read("chart/values.yaml"));

/** `${{ env.X }}` in a workflow string, resolved against the workflow's env. */
function withEnv(text: string): string {
  return text.replace(/\$\{\{\s*env\.(\w+)\s*\}\}/g, (_, name) => release.env![name]);
}

Deno.test("workflows: every file under .github/workflows is checked here", () => {
  const present = [...Deno.readDirSync(new URL(".github/workflows/", ROOT))].map((e) => e.name);
  assertEquals(present.sort(), WORKFLOWS);
});

Deno.test("workflows: they parse, every job has steps, every action is pinned to a version", () => {
  for (const [file, workflow] of workflows) {
    assert(workflow.name && workflow.on && workflow.jobs, `${file}: name, on and jobs`);
    for (const [name, job] of Object.entries(workflow.jobs)) {
      assert(/^ubuntu-\d+\.\d+$/.test(job["runs-on"]), `${file} ${name}: runner pinned`);
      assert(job.steps.length > 0, `${file} ${name}: no steps`);
      const needs = [job.needs ?? []].flat();
      for (const need of needs) assert(workflow.jobs[need], `${file} ${name}: needs ${need}`);
      for (const step of job.steps) {
        assert(step.uses || step.run, `${file} ${name}: a step with neither uses nor run`);
        if (step.uses) {
          assert(/^[\w-]+\/[\w-]+@(v\d+|[0-9a-f]{40})$/.test(step.uses), `${file}: ${step.uses}`);
        }
      }
    }
  }
});

Deno.test("workflows: their shell is valid and every script they run exists", async () => {
  for (const [file, workflow] of workflows) {
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps.filter((s) => s.run)) {
        const script = step.run!.replace(/\$\{\{[^}]*\}\}/g, "VALUE");
        const check = await new Deno.Command("sh", { args: ["-n", "-c", script], stderr: "piped" })
          .output();
        assert(check.success, `${file}: ${new TextDecoder().decode(check.stderr)}\n${script}`);
        for (const path of script.matchAll(/(?:^|\s)(\.(?:ci|github)\/[\w./-]+)/g)) {
          const info = Deno.statSync(new URL(path[1], ROOT));
          assert(
            info.isFile && (info.mode! & 0o111) !== 0,
            `${file}: ${path[1]} is not executable`,
          );
        }
      }
    }
  }
  // Both workflows run the same test entry point as root.
  for (const [file, job] of [["ci.yml", "test"], ["release.yml", "test"]]) {
    const runs = workflows.get(file)!.jobs[job].steps.map((s) => s.run ?? "");
    assert(runs.some((r) => r.includes("sudo") && r.includes(".ci/run")), `${file} runs .ci/run`);
  }
});

Deno.test("release: images for amd64 and arm64, pushed where the chart looks, with SBOM and provenance", () => {
  const job = release.jobs.images;
  assertEquals(job.needs, ["version", "test"]);
  const images = job.strategy!.matrix.image;
  assertEquals(
    images.map((image) => `${release.env!.IMAGE_PREFIX}/${image}`),
    [values.sidecar.image.repository, values.webhook.image.repository],
  );
  for (const image of images) Deno.statSync(new URL(`Dockerfile.${image}`, ROOT));
  const build = job.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"))!;
  assertEquals(build.with!.file, "Dockerfile.${{ matrix.image }}");
  assertEquals(build.with!.platforms, "linux/amd64,linux/arm64");
  assertEquals(
    withEnv(String(build.with!.tags)),
    `${release.env!.IMAGE_PREFIX}/\${{ matrix.image }}:\${{ needs.version.outputs.version }}`,
  );
  assertEquals(build.with!["build-args"], "VERSION=${{ needs.version.outputs.version }}");
  assertEquals([build.with!.push, build.with!.sbom, build.with!.provenance], [
    true,
    true,
    "mode=max",
  ]);
  const attest = job.steps.find((s) => s.uses?.startsWith("actions/attest-build-provenance@"))!;
  assertEquals(attest.with!["subject-digest"], `\${{ steps.${build.id}.outputs.digest }}`);
  assertEquals(job.permissions, {
    contents: "read",
    packages: "write",
    "id-token": "write",
    attestations: "write",
  });
});

Deno.test("release: the chart is packaged with version = appVersion = the tag and pushed as OCI", () => {
  const job = release.jobs.chart;
  const script = job.steps.map((s) => s.run ?? "").join("\n");
  assert(script.includes("helm package chart"), script);
  assert(script.includes('--version "${{ needs.version.outputs.version }}"'), script);
  assert(script.includes('--app-version "${{ needs.version.outputs.version }}"'), script);
  assert(script.includes(`dist/${chart.name}-\${{ needs.version.outputs.version }}.tgz`), script);
  assertEquals(release.env!.CHART_REPOSITORY, "oci://ghcr.io/kubevirt-imds/charts");
  const attest = job.steps.find((s) => s.uses?.startsWith("actions/attest-build-provenance@"))!;
  assertEquals(
    `oci://${attest.with!["subject-name"]}`,
    `${release.env!.CHART_REPOSITORY}/${chart.name}`,
  );
  // A release tag can match the chart only if its version and appVersion agree.
  assertEquals(chart.version, chart.appVersion);
  assertEquals(release.on, { push: { tags: ["v[0-9]+.[0-9]+.[0-9]+"] } });
});

Deno.test("release: the version job refuses a tag that does not match chart/Chart.yaml", async () => {
  const run = async (tag: string) => {
    const out = await new Deno.Command(new URL(".github/release-version", ROOT).pathname, {
      args: [tag],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  };
  assertEquals(await run(`v${chart.appVersion}`), {
    code: 0,
    stdout: `version=${chart.appVersion}\n`,
    stderr: "",
  });
  const other = await run("v999.0.0");
  assertEquals(other.code, 1);
  assert(other.stderr.includes("set both to 999.0.0"), other.stderr);
  assertEquals((await run("latest")).code, 1);
  const steps = release.jobs.version.steps.map((s) => s.run ?? "").join("\n");
  assert(steps.includes('.github/release-version "$GITHUB_REF_NAME"'), steps);
});

Deno.test("README: the first install path is the released chart, at the chart's version", () => {
  const readme = read("README.md");
  const install = readme.slice(readme.indexOf("## Install with Helm"));
  const reference = `${release.env!.CHART_REPOSITORY}/${chart.name}`;
  const first = install.indexOf(reference);
  assert(first >= 0, `README does not install ${reference}`);
  assert(first < install.indexOf("./chart"), "the OCI chart comes before ./chart");
  assert(install.includes(`--version ${chart.version}`), "README names the chart version");
});
