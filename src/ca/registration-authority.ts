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

/** A delegate of the issuing CA: the SCEP RA or the OCSP responder. */
export interface RegistrationAuthority {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** The issuing CA, then the certificates above it. */
  readonly chain: readonly Certificate[];
}

/** Renew a delegate's certificate when less than this is left of it. */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

interface DelegateSpec {
  readonly id: string;
  readonly role: 'ra' | 'ocsp';
  readonly template: 'scepRa' | 'ocspSigning';
  readonly keyType: 'rsa-2048' | 'p-256';
  readonly commonName: string;
  readonly validity: { readonly value: number; readonly scale: 'months' | 'years' };
}

/**
 * A key and certificate the issuing CA delegates a protocol role to, created
 * on first use and again when its certificate nears its end or the issuing
 * CA changed; kept sealed beside the CAs. `store` must be the CA's store.
 */
async function ensureDelegate(ca: CertificateAuthority, store: CaStore, keyStore: SealedKeyStore, spec: DelegateSpec, now: Date): Promise<RegistrationAuthority> {
  const chain = [ca.certificate, ...ca.chain];
  const existing = await store.getCa(spec.id);
  if (existing?.sealedKey) {
    const certificate = decodeCertificate(existing.certificateDer);
    const current = certificate.notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS && Buffer.compare(certificate.issuer.der, ca.certificate.subject.der) === 0;
    if (current) return { certificate, key: keyStore.open(existing.keyRef, existing.sealedKey), chain };
  }
  const { privateKey } = generateKeyPair(spec.keyType);
  const subject = encodeName([...ca.certificate.subject.rdns.flatMap((rdn) => rdn.filter((a) => a.type === '2.5.4.10').map((a) => [a.type, a.value] as const)), ['CN', spec.commonName]]);
  const issued = await ca.issue({
    profile: defaultProfile(spec.template, { name: spec.id, keyTypes: [spec.keyType], validity: spec.validity }),
    publicKey: createPublicKey(privateKey),
    names: { subject, emails: [], upns: [] },
    requester: 'keyfleet',
  });
  const keyRef = `file:${spec.id}`;
  const record = { id: spec.id, role: spec.role, certificateDer: issued.der, chainDer: chain.map((c) => c.der), keyRef, sealedKey: keyStore.seal(keyRef, privateKey), createdAt: now };
  if (existing) await store.replaceCa(record);
  else await store.putCa(record);
  return { certificate: issued.certificate, key: privateKey, chain };
}

/** The SCEP RA (RSA: clients encrypt their requests to it with RSA key transport). */
export function ensureRegistrationAuthority(ca: CertificateAuthority, store: CaStore, keyStore: SealedKeyStore, now = new Date()): Promise<RegistrationAuthority> {
  return ensureDelegate(ca, store, keyStore, { id: SCEP_RA_ID, role: 'ra', template: 'scepRa', keyType: 'rsa-2048', commonName: 'Keyfleet SCEP RA', validity: { value: 2, scale: 'years' } }, now);
}

export const OCSP_RESPONDER_ID = 'ocsp-responder';

/**
 * A delegated OCSP responder (RFC 6960 §4.2.2.2): EKU id-kp-OCSPSigning and
 * id-pkix-ocsp-nocheck, a P-256 key so that signing each response (a fresh
 * nonce means a fresh signature) costs a fraction of an RSA signature.
 */
export function ensureOcspResponder(ca: CertificateAuthority, store: CaStore, keyStore: SealedKeyStore, now = new Date()): Promise<RegistrationAuthority> {
  return ensureDelegate(ca, store, keyStore, { id: OCSP_RESPONDER_ID, role: 'ocsp', template: 'ocspSigning', keyType: 'p-256', commonName: 'Keyfleet OCSP Responder', validity: { value: 6, scale: 'months' } }, now);
}
