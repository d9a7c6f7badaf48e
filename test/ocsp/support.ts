/**
 * The OCSP test PKI, made with the openssl CLI (test/x509/pki.ts): a root,
 * an RSA-2048 issuing CA and an EC P-256 issuing CA, leaves (one revoked with
 * `openssl ca -revoke`), a delegated responder certificate (EKU OCSPSigning,
 * id-pkix-ocsp-nocheck) and a look-alike without the EKU. The responder's
 * lookup reads the issuing CA's `openssl ca` database (index.txt), so the
 * OCSP answers and the CA's own record are the same data.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Certificate } from '../../src/x509/certificate.ts';
import type { OcspCertStatus, OcspLookup } from '../../src/ca/ocsp.ts';
import { type Issued, TestPki, caExt, leafExt } from '../x509/pki.ts';
import { run, type RunResult } from '../support/exec.ts';

export interface OcspPki {
  readonly pki: TestPki;
  readonly root: Issued;
  readonly ca: Issued;
  readonly caKey: KeyObject;
  readonly good: Issued;
  readonly revoked: Issued;
  readonly superseded: Issued;
  readonly responder: Issued;
  readonly responderKey: KeyObject;
  /** Issued by the CA, but without id-kp-OCSPSigning. */
  readonly impostor: Issued;
  readonly impostorKey: KeyObject;
  readonly ecCa: Issued;
  readonly ecCaKey: KeyObject;
  readonly ecLeaf: Issued;
  /** A CA the responder does not serve, and a leaf of it. */
  readonly foreignCa: Issued;
  readonly foreignLeaf: Issued;
  /** CA and root in one file (-CAfile, -verify_other). */
  readonly chainPath: string;
  /** The leaf's serial, as index.txt says it, per CA database. */
  lookupFor(ca: Issued): OcspLookup;
  write(name: string, bytes: Uint8Array): string;
  cleanup(): void;
}

export const responderExt = (eku = 'OCSPSigning'): string[] => [
  'basicConstraints = critical,CA:false',
  'keyUsage = critical,digitalSignature',
  `extendedKeyUsage = ${eku}`,
  'noCheck = ignored',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

const reasons: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  CACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
};

/** openssl ca's database time: YYMMDDHHMMSSZ. */
function indexTime(s: string): Date {
  const y = Number(s.slice(0, 2));
  return new Date(Date.UTC(y >= 50 ? 1900 + y : 2000 + y, Number(s.slice(2, 4)) - 1, Number(s.slice(4, 6)), Number(s.slice(6, 8)), Number(s.slice(8, 10)), Number(s.slice(10, 12))));
}

const strip = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, '');

/** index.txt lines: status, expiry, revocation[,reason], serial, file, subject (tab-separated). */
export function indexLookup(indexPath: string): OcspLookup {
  return async (_issuer: Certificate, serialHex: string): Promise<OcspCertStatus> => {
    for (const line of readFileSync(indexPath, 'latin1').split('\n')) {
      const f = line.split('\t');
      if (f.length < 4 || strip(f[3]!) !== strip(serialHex)) continue;
      if (f[0] === 'V') return { status: 'good' };
      if (f[0] === 'R') {
        const [when, reason] = f[2]!.split(',');
        const code = reason === undefined ? undefined : reasons[reason];
        return code === undefined ? { status: 'revoked', revokedAt: indexTime(when!) } : { status: 'revoked', revokedAt: indexTime(when!), reason: code };
      }
    }
    return { status: 'unknown' };
  };
}

const key = (i: Issued): KeyObject => createPrivateKey(readFileSync(i.keyPath));

export function buildOcspPki(): OcspPki {
  const pki = new TestPki();
  const root = pki.root('OCSP Test Root', { key: 'rsa2048' });
  const ca = pki.issue('OCSP Test CA', root, { key: 'rsa2048', ext: caExt(0) });
  const good = pki.issue('good@example.org', ca);
  const revoked = pki.issue('revoked@example.org', ca);
  const superseded = pki.issue('superseded@example.org', ca);
  pki.revoke(ca, revoked, 'keyCompromise');
  pki.revoke(ca, superseded, 'superseded');
  const responder = pki.issue('OCSP Responder', ca, { key: 'rsa2048', ext: responderExt() });
  const impostor = pki.issue('Not An OCSP Responder', ca, { key: 'rsa2048', ext: leafExt() });
  const ecCa = pki.issue('OCSP Test EC CA', root, { key: 'p256', ext: caExt(0) });
  const ecLeaf = pki.issue('ec@example.org', ecCa);
  const foreignCa = pki.root('Foreign CA');
  const foreignLeaf = pki.issue('foreign@example.org', foreignCa);
  const chainPath = pki.bundle('chain', [ca, root]);
  return {
    pki,
    root,
    ca,
    caKey: key(ca),
    good,
    revoked,
    superseded,
    responder,
    responderKey: key(responder),
    impostor,
    impostorKey: key(impostor),
    ecCa,
    ecCaKey: key(ecCa),
    ecLeaf,
    foreignCa,
    foreignLeaf,
    chainPath,
    lookupFor: (issuer) => indexLookup(join(issuer.caDir, 'index.txt')),
    write(name, bytes) {
      const path = join(pki.dir, name);
      writeFileSync(path, bytes);
      return path;
    },
    cleanup: () => pki.cleanup(),
  };
}

export function openssl(args: readonly string[], cwd?: string): Promise<RunResult> {
  return run('openssl', args, cwd === undefined ? {} : { cwd });
}

/** Everything openssl said, for assertions and messages. */
export const said = (r: RunResult): string => `${r.stdout.toString('latin1')}${r.stderr}`;
