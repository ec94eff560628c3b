/**
 * Test certificates made with the openssl CLI: a CA and a serving certificate
 * signed by it, shaped like the ones cert-manager issues (ECDSA P-256, PKCS#8
 * key, subjectAltName, serverAuth).
 */

/** What the serving certificate is for. */
export interface CertificateSubject {
  /** subjectAltName DNS entries; the first one is also the subject CN unless `commonName` is set. */
  dnsNames: string[];
  /** subjectAltName IP entries. */
  ipAddresses?: string[];
  /** Subject CN of the serving certificate (default: the first DNS name). */
  commonName?: string;
  /** Subject CN of the CA. */
  caCommonName: string;
}

/** Paths of the files `writeCertificateFiles` creates. */
export interface CertificateFiles {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
}

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

/**
 * Writes ca.crt, ca.key, tls.crt and tls.key (the serving certificate, signed
 * by that CA, for `subject`) into the existing directory `dir`.
 */
export async function writeCertificateFiles(
  dir: string,
  subject: CertificateSubject,
): Promise<CertificateFiles> {
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
    `/CN=${subject.caCommonName}`,
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
    `/CN=${subject.commonName ?? subject.dnsNames[0]}`,
  ], dir);
  const altNames = [
    ...subject.dnsNames.map((name) => `DNS:${name}`),
    ...(subject.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ];
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    [
      `subjectAltName=${altNames.join(",")}`,
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

/** Like `writeCertificateFiles`, into a new temporary directory (the caller removes it). */
export async function makeCertificateFiles(
  subject: CertificateSubject,
  dirPrefix = "imds-test-tls-",
): Promise<CertificateFiles> {
  const dir = await Deno.makeTempDir({ prefix: dirPrefix });
  try {
    return await writeCertificateFiles(dir, subject);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}
