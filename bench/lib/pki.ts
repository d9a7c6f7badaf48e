/**
 * The benchmark's test PKI, made with the `openssl` CLI at bench start: a
 * root CA and one RSA-2048 S/MIME leaf that both signs and receives
 * encrypted mail (keyUsage digitalSignature + keyEncipherment, EKU
 * emailProtection, SAN rfc822Name — what RFC 8550 §4.4 and Outlook expect).
 *
 * Deliberately not test/support/pki.ts: that one generates every scenario of
 * the test suite; the bench needs two certificates and should start fast.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchPki {
  readonly dir: string;
  readonly rootCert: string;
  readonly rootKey: string;
  readonly leafCert: string;
  /** PKCS#8 PEM. */
  readonly leafKey: string;
  /** The leaf's rfc822Name; messages are sent From it, so sender checks pass. */
  readonly email: string;
}

export const BENCH_EMAIL = 'alice@bench.keyfleet.example';

function openssl(args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr}`, { cause: e });
  }
}

/** Files are named by role in `dir`; returns their paths. */
export function createBenchPki(dir: string): BenchPki {
  const p = (name: string): string => join(dir, name);
  const pki: BenchPki = {
    dir,
    rootCert: p('root.crt.pem'),
    rootKey: p('root.key.pem'),
    leafCert: p('leaf.crt.pem'),
    leafKey: p('leaf.key.pem'),
    email: BENCH_EMAIL,
  };
  for (const key of [pki.rootKey, pki.leafKey]) openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);

  writeFileSync(
    p('ext.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[root]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '[leaf]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = emailProtection',
      `subjectAltName = email:${BENCH_EMAIL}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  openssl(['req', '-x509', '-new', '-key', pki.rootKey, '-sha256', '-days', '30', '-subj', '/O=Keyfleet Bench/CN=Bench Root CA', '-config', p('ext.cnf'), '-extensions', 'root', '-out', pki.rootCert]);
  openssl(['req', '-new', '-key', pki.leafKey, '-subj', `/O=Keyfleet Bench/CN=Alice Bench`, '-config', p('ext.cnf'), '-out', p('leaf.csr.pem')]);
  openssl([
    'x509', '-req', '-in', p('leaf.csr.pem'), '-CA', pki.rootCert, '-CAkey', pki.rootKey, '-set_serial', '4242',
    '-sha256', '-days', '30', '-extfile', p('ext.cnf'), '-extensions', 'leaf', '-out', pki.leafCert,
  ]);
  return pki;
}
