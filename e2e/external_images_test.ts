import { assert, assertEquals, assertThrows } from "../testing/assert.ts";
import { dockerfileImages, externalImages } from "./external_images.ts";

Deno.test("external images: every image from elsewhere is listed, from the file that names it", () => {
  const found = new Map<string, string[]>();
  for (const { image, source } of externalImages()) {
    found.set(image, [...(found.get(image) ?? []), source]);
  }
  assertEquals([...found.keys()].sort(), [
    "denoland/deno:debian-2.9.6",
    "docker.io/curlimages/curl:8.11.1",
    "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
    "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
    "quay.io/containerdisks/ubuntu:24.04",
    "quay.io/kubevirt/cirros-container-disk-demo:v1.6.3",
  ]);
  assertEquals(found.get("denoland/deno:debian-2.9.6"), [
    "Dockerfile.sidecar",
    "Dockerfile.webhook",
  ]);
  assert(found.get("quay.io/kubevirt/cirros-container-disk-demo:v1.6.3")!.length >= 4);
});

Deno.test("external images: each is pinned by a version tag or a digest, never a moving name", () => {
  for (const { image, source } of externalImages()) {
    const tag = /:([\w.-]+)(@sha256:[0-9a-f]{64})?$/.exec(image);
    assert(tag, `${source}: ${image} has no tag`);
    assert(!["latest", "snapshot", "stable", "main", "master"].includes(tag[1]), image);
  }
});

Deno.test("external images: Dockerfile FROM lines are read with their ARG defaults", () => {
  const text = "ARG BASE=debian\nARG V=1.2\nFROM example/${BASE}:${V} AS build\nFROM scratch\n";
  assertEquals(dockerfileImages(text, "Dockerfile.x"), [
    { image: "example/debian:1.2", source: "Dockerfile.x" },
  ]);
  assertThrows(
    () => dockerfileImages("FROM example/${X}\n", "Dockerfile.y"),
    /Dockerfile.y: ARG X has no default/,
  );
});
