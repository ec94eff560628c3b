/**
 * Test certificates for the webhook: a CA and a serving certificate for
 * 127.0.0.1 and localhost, written the way the kubelet writes a Secret volume
 * (tls.crt → ..data/tls.crt, ..data → a timestamped directory), so a renewal
 * can be swapped in exactly as in a pod.
 */
import { writeCertificateFiles } from "./certificates.ts";

export interface TestCertificate {
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A fresh CA and a P-256 serving certificate signed by it, for localhost and 127.0.0.1. */
export async function makeCertificate(commonName = "imds-webhook"): Promise<TestCertificate> {
  const dir = await Deno.makeTempDir({ prefix: "imds-webhook-cert-" });
  try {
    const files = await writeCertificateFiles(dir, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      commonName,
      caCommonName: `${commonName}-ca`,
    });
    return {
      caPem: await Deno.readTextFile(files.caCert),
      certPem: await Deno.readTextFile(files.cert),
      keyPem: await Deno.readTextFile(files.key),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A directory laid out like a mounted Secret volume. */
export interface SecretVolume {
  dir: string;
  certPath: string;
  keyPath: string;
  /** Replaces the files the way the kubelet does: a new directory, then one symlink rename. */
  swap(files: { certPem: string; keyPem: string }): Promise<void>;
  remove(): Promise<void>;
}

export async function secretVolume(
  files: { certPem: string; keyPem: string },
): Promise<SecretVolume> {
  const dir = await Deno.makeTempDir({ prefix: "imds-webhook-tls-" });
  let generation = 0;
  const write = async (content: { certPem: string; keyPem: string }) => {
    const version = `..2026_01_01_00_00_0${generation++}.${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(`${dir}/${version}`);
    await Deno.writeTextFile(`${dir}/${version}/tls.crt`, content.certPem);
    await Deno.writeTextFile(`${dir}/${version}/tls.key`, content.keyPem);
    await Deno.symlink(version, `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
  };
  await write(files);
  await Deno.symlink("..data/tls.crt", `${dir}/tls.crt`);
  await Deno.symlink("..data/tls.key", `${dir}/tls.key`);
  return {
    dir,
    certPath: `${dir}/tls.crt`,
    keyPath: `${dir}/tls.key`,
    swap: write,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
