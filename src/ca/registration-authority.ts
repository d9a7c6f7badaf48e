/**
 * The SCEP registration authority (RFC 8894 §2.1): an RSA key and a
 * certificate from the issuing CA with digitalSignature and keyEncipherment
 * (REFERENCE.md "SCEP in practice": macOS picks the wrong certificate
 * otherwise), kept sealed beside the CAs. It is RSA whatever the CA's key
 * type, because SCEP clients encrypt their requests with RSA key transport.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { CaStore } from '../store/ca.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { encodeName } from '../x509/name.ts';
import type { CertificateAuthority } from './authority.ts';
import type { SealedKeyStore } from './keystore.ts';
import { defaultProfile } from './templates.ts';
import { generateKeyPair } from './key-spec.ts';

export const SCEP_RA_ID = 'scep-ra';

export interface RegistrationAuthority {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** The issuing CA, then the certificates above it. */
  readonly chain: readonly Certificate[];
}

/** Renew the RA certificate when less than this is left of it. */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

/**
 * The RA, created on first use (and again when its certificate nears its
 * end or the issuing CA changed). `store` must be the store the CA uses.
 */
export async function ensureRegistrationAuthority(ca: CertificateAuthority, store: CaStore, keyStore: SealedKeyStore, now = new Date()): Promise<RegistrationAuthority> {
  const chain = [ca.certificate, ...ca.chain];
  const existing = await store.getCa(SCEP_RA_ID);
  if (existing?.sealedKey) {
    const certificate = decodeCertificate(existing.certificateDer);
    const current = certificate.notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS && Buffer.compare(certificate.issuer.der, ca.certificate.subject.der) === 0;
    if (current) return { certificate, key: keyStore.open(existing.keyRef, existing.sealedKey), chain };
  }
  const { privateKey } = generateKeyPair('rsa-2048');
  const subject = encodeName([...ca.certificate.subject.rdns.flatMap((rdn) => rdn.filter((a) => a.type === '2.5.4.10').map((a) => [a.type, a.value] as const)), ['CN', 'Keyfleet SCEP RA']]);
  const issued = await ca.issue({
    profile: defaultProfile('scepRa', { name: SCEP_RA_ID, keyTypes: ['rsa-2048'], validity: { value: 2, scale: 'years' } }),
    publicKey: createPublicKey(privateKey),
    names: { subject, emails: [], upns: [] },
    requester: 'keyfleet',
  });
  const record = { id: SCEP_RA_ID, role: 'ra' as const, certificateDer: issued.der, chainDer: chain.map((c) => c.der), keyRef: `file:${SCEP_RA_ID}`, sealedKey: keyStore.seal(`file:${SCEP_RA_ID}`, privateKey), createdAt: now };
  if (existing) await store.replaceCa(record);
  else await store.putCa(record);
  return { certificate: issued.certificate, key: privateKey, chain };
}
