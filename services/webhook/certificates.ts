/**
 * The serving certificate, read from the files cert-manager's Secret is
 * mounted as, and reloaded when they change. The kubelet updates a Secret
 * volume by swapping a symlink, so the files are compared by inode, size and
 * modification time: a cheap stat before every TLS handshake, plus a
 * periodic look so a renewal is logged even without traffic. A pair that does
 * not load (unreadable, not PEM, key not matching) never replaces a good one.
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import type { Logger } from "../shared/log.ts";
import { configError } from "../shared/settings.ts";

export interface LoadedCertificate {
  context: SecureContext;
  /** SHA-256 fingerprint, colon-separated hex. */
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

export interface CertificateStore {
  readonly current: LoadedCertificate;
  /** Reloads if the files changed since the last look; returns the certificate to serve. */
  refresh(): LoadedCertificate;
  stop(): void;
}

export interface CertificateStoreOptions {
  certPath: string;
  keyPath: string;
  log: Logger;
  onLoad?: (certificate: LoadedCertificate) => void;
  onFailure?: (problem: string) => void;
  /** How often to look at the files without a handshake asking (default 10 s). */
  checkIntervalMs?: number;
}

function fileSignature(path: string): string {
  try {
    const info = Deno.statSync(path);
    return `${info.ino}:${info.size}:${info.mtime?.getTime()}`;
  } catch (error) {
    return `missing:${(error as Error).name}`;
  }
}

/** Loads and checks a certificate/key pair; the error names the file at fault. */
export function loadCertificate(certPath: string, keyPath: string): LoadedCertificate {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = Deno.readTextFileSync(certPath);
  } catch (error) {
    throw configError("--tls-cert", `cannot read ${certPath}: ${(error as Error).message}`);
  }
  try {
    keyPem = Deno.readTextFileSync(keyPath);
  } catch (error) {
    throw configError("--tls-key", `cannot read ${keyPath}: ${(error as Error).message}`);
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw configError(
      "--tls-cert",
      `${certPath} holds no PEM certificate (${(error as Error).message})`,
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw configError(
      "--tls-key",
      `${keyPath} holds no PEM private key (${(error as Error).message})`,
    );
  }
  if (!certificate.checkPrivateKey(key)) {
    throw configError(
      "--tls-key",
      `the key in ${keyPath} does not match the certificate in ${certPath}`,
    );
  }
  return {
    context: createSecureContext({ cert: certPem, key: keyPem }),
    fingerprint: certificate.fingerprint256,
    subject: certificate.subject.replaceAll("\n", ", "),
    notAfter: new Date(certificate.validTo),
  };
}

/** Loads the pair now (throws a ConfigError if it cannot) and keeps it fresh. */
export function openCertificateStore(options: CertificateStoreOptions): CertificateStore {
  const { certPath, keyPath, log } = options;
  const signature = () => `${fileSignature(certPath)}|${fileSignature(keyPath)}`;
  let seen = signature();
  let current = loadCertificate(certPath, keyPath);
  options.onLoad?.(current);
  log.info("serving certificate loaded", describe(current));

  function describe(certificate: LoadedCertificate) {
    return {
      subject: certificate.subject,
      fingerprint: certificate.fingerprint,
      expires: certificate.notAfter.toISOString(),
    };
  }

  function refresh(): LoadedCertificate {
    const now = signature();
    if (now === seen) return current;
    seen = now;
    try {
      const next = loadCertificate(certPath, keyPath);
      if (next.fingerprint !== current.fingerprint) {
        log.info("serving certificate renewed; new connections get the new one", {
          ...describe(next),
          previousFingerprint: current.fingerprint,
        });
      }
      current = next;
      options.onLoad?.(current);
    } catch (error) {
      const problem = (error as Error).message;
      log.warn(
        "the certificate files changed but do not load; still serving the previous certificate",
        {
          problem,
          fingerprint: current.fingerprint,
        },
      );
      options.onFailure?.(problem);
    }
    return current;
  }

  const timer = setInterval(refresh, options.checkIntervalMs ?? 10_000);
  Deno.unrefTimer(timer);
  return {
    get current() {
      return current;
    },
    refresh,
    stop() {
      clearInterval(timer);
    },
  };
}
