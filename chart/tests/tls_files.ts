/**
 * A CA and a serving certificate made with openssl, shaped like the ones
 * cert-manager issues from the chart's Certificate (ECDSA P-256, PKCS#8 key,
 * the Service's DNS names), for running the webhook and the `helm test`
 * script locally.
 */
export type TlsFiles = { dir: string; caCert: string; cert: string; key: string };

/** Whether openssl runs here. */
export async function opensslAvailable(): Promise<boolean> {
  try {
    const out = await new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Writes ca.crt, tls.crt and tls.key (signed by that CA, for `dnsNames`) into a new directory. */
export async function makeTlsFiles(
  dnsNames: string[],
  commonName = "imds-test-ca",
): Promise<TlsFiles> {
  const dir = await Deno.makeTempDir({ prefix: "imds-chart-tls-" });
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...curve,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  await openssl([
    "req",
    "-new",
    ...curve,
    "-keyout",
    "tls.key",
    "-out",
    "tls.csr",
    "-subj",
    `/CN=${dnsNames[0]}`,
  ], dir);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    [
      `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(",")}`,
      "extendedKeyUsage=serverAuth",
      "keyUsage=critical,digitalSignature,keyEncipherment",
    ].join("\n"),
  );
  await openssl([
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
    "1",
    "-extfile",
    "ext.cnf",
  ], dir);
  return { dir, caCert: `${dir}/ca.crt`, cert: `${dir}/tls.crt`, key: `${dir}/tls.key` };
}
