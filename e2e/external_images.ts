/**
 * Every image from elsewhere that the contributor loop depends on: the build
 * stages of the Dockerfiles, the chart's `helm test` image, the test VMs'
 * container disks, the kind node image and the Multus image the Taskfile
 * installs. Read from the files that name them, so the list cannot drift.
 *
 * `deno run --allow-read --allow-env e2e/external_images.ts` prints one image per line;
 * `task images-check` asks the registry for each one before anything is built.
 */

import { parse as parseYaml } from "yaml";

const ROOT = new URL("../", import.meta.url);

export interface ExternalImage {
  image: string;
  /** The file (and place in it) that names the image. */
  source: string;
}

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

/** The FROM images of a Dockerfile, with `${ARG}` replaced by the ARG's default. */
export function dockerfileImages(text: string, source: string): ExternalImage[] {
  const args = new Map<string, string>();
  const images: ExternalImage[] = [];
  for (const line of text.split("\n")) {
    const arg = /^ARG\s+(\w+)=(\S+)/.exec(line);
    if (arg) args.set(arg[1], arg[2]);
    const from = /^FROM\s+(\S+)/.exec(line);
    if (!from || from[1] === "scratch") continue;
    const image = from[1].replace(/\$\{(\w+)\}/g, (_, name) => {
      const value = args.get(name);
      if (value === undefined) throw new Error(`${source}: ARG ${name} has no default`);
      return value;
    });
    images.push({ image, source });
  }
  return images;
}

/** The container disk images of the VMs in a manifest file. */
export function containerDiskImages(text: string, source: string): ExternalImage[] {
  return [...text.matchAll(/^\s+image:\s*(\S+)\s*$/gm)].map((m) => ({ image: m[1], source }));
}

export function externalImages(): ExternalImage[] {
  const images: ExternalImage[] = [];
  for (const file of ["Dockerfile.sidecar", "Dockerfile.webhook"]) {
    images.push(...dockerfileImages(read(file), file));
  }
  const values = parseYaml(read("chart/values.yaml"));
  const test = values.tests.image;
  images.push({
    image: `${test.repository}:${test.tag}${test.digest ? `@${test.digest}` : ""}`,
    source: "chart/values.yaml tests.image",
  });
  for (const entry of Deno.readDirSync(new URL("deploy/test/", ROOT))) {
    if (!entry.name.endsWith(".yaml")) continue;
    const file = `deploy/test/${entry.name}`;
    images.push(...containerDiskImages(read(file), file));
  }
  const vars = parseYaml(read("Taskfile.yml")).vars as Record<string, string>;
  const render = (value: string) => value.replace(/\{\{\.(\w+)\}\}/g, (_, name) => vars[name]);
  for (const name of ["KIND_NODE_IMAGE", "MULTUS_IMAGE"]) {
    images.push({ image: render(vars[name]), source: `Taskfile.yml vars.${name}` });
  }
  return images;
}

if (import.meta.main) {
  console.log([...new Set(externalImages().map((i) => i.image))].sort().join("\n"));
}
