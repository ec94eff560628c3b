/**
 * Test certificates made with the openssl CLI: a CA and a serving
 * certificate for 127.0.0.1 and localhost, written the way the kubelet
 * writes a Secret volume (tls.crt → ..data/tls.crt, ..data → a timestamped
 * directory), so a renewal can be swapped in exactly as in a pod.
 */

export interface TestCertificate {
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("the openssl CLI makes the test certificates: apt-get install openssl");
    }
    throw error;
  }
  if (!output.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** A fresh CA and a P-256 serving certificate signed by it. */
export async function makeCertificate(commonName = "imds-webhook"): Promise<TestCertificate> {
  const dir = await Deno.makeTempDir({ prefix: "imds-webhook-cert-" });
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        `/CN=${commonName}-ca`,
      ],
      dir,
    );
    await openssl(
      ["req", ...ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", `/CN=${commonName}`],
      dir,
    );
    await Deno.writeTextFile(`${dir}/ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
      ],
      dir,
    );
    return {
      caPem: await Deno.readTextFile(`${dir}/ca.crt`),
      certPem: await Deno.readTextFile(`${dir}/tls.crt`),
      keyPem: await Deno.readTextFile(`${dir}/tls.key`),
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
