/**
 * Setting up the CA (`keyfleet ca init`): a new self-signed root (10 years)
 * and an issuing CA under it (5 years, pathLenConstraint 0), or an existing
 * issuing CA imported with its key and its chain up to an external root.
 * Opening a set-up CA loads its records and reaches its key through the
 * KeyStore.
 *
 * CA certificates carry basicConstraints (critical), keyUsage keyCertSign
 * and cRLSign (critical; RFC 5280 §4.2.1.3), and key identifiers
 * (§4.2.1.1–2). The issuing CA also has digitalSignature so that it can
 * sign OCSP responses itself (RFC 6960 §4.2.2.2).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import type { CaRecord } from '../store/ca.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { encodeName, nameToString, namesEqual } from '../x509/name.ts';
import { signatureScheme, verifySignature } from '../x509/signature.ts';
import { type CaOptions, CLOCK_SKEW_MS, CertificateAuthority, ISSUING_CA_ID, ROOT_CA_ID } from './authority.ts';
import { type CertificateSigner, buildCertificate, defaultRandom, makeSigner, randomSerial } from './certificate-builder.ts';
import * as ext from './extensions.ts';
import { type KeySpec, describeKey } from './key-spec.ts';
import type { KeyStore, StoredKey } from './keystore.ts';
import { addValidity } from './templates.ts';

/** `[type, value]` pairs, most significant first (short names such as O, CN, or OIDs); see encodeName. */
export type NameSpec = readonly (readonly [string, string])[];

export interface InitCaOptions extends CaOptions {
  /** Key type of both CA keys (default rsa-3072). */
  readonly keyType?: KeySpec;
  readonly rootSubject?: NameSpec;
  readonly issuingSubject?: NameSpec;
}

export interface ImportCaOptions extends CaOptions {
  /** The issuing CA certificate (DER). */
  readonly certificate: Uint8Array;
  readonly privateKey: KeyObject;
  /** Certificates above it, nearest first, up to and including the (external) root. */
  readonly chain: readonly Uint8Array[];
}

const DEFAULT_ROOT: NameSpec = [['O', 'Keyfleet'], ['CN', 'Keyfleet Root CA']];
const DEFAULT_ISSUING: NameSpec = [['O', 'Keyfleet'], ['CN', 'Keyfleet Issuing CA']];

async function refuseExisting(options: CaOptions): Promise<void> {
  if (await options.store.getCa(ISSUING_CA_ID)) throw new KeyfleetError('KF_CONFLICT', 'a certificate authority is already set up');
}

function signerFor(keyStore: KeyStore, stored: StoredKey, publicKey: KeyObject): CertificateSigner {
  return makeSigner(publicKey, (scheme, data) => keyStore.sign(stored, scheme, data));
}

/** Creates a new root and issuing CA, records both, and returns the CA service. */
export async function initCa(options: InitCaOptions): Promise<CertificateAuthority> {
  await refuseExisting(options);
  const clock = options.clock ?? (() => new Date());
  const random = options.random ?? defaultRandom;
  const keyType = options.keyType ?? 'rsa-3072';
  const now = clock();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);

  const rootKey = await options.keyStore.generate(`sealed:${ROOT_CA_ID}`, keyType);
  const rootSpki = rootKey.publicKey.export({ format: 'der', type: 'spki' });
  const rootKeyId = ext.keyIdentifier(rootSpki);
  const rootName = encodeName(options.rootSubject ?? DEFAULT_ROOT);
  const rootSigner = signerFor(options.keyStore, rootKey.stored, rootKey.publicKey);
  const rootDer = await buildCertificate(
    {
      serialNumber: randomSerial(random),
      issuer: rootName,
      subject: rootName,
      notBefore,
      notAfter: addValidity(now, { value: 10, scale: 'years' }),
      spki: rootSpki,
      extensions: [ext.basicConstraints(true), ext.keyUsage(['keyCertSign', 'cRLSign']), ext.subjectKeyIdentifier(rootKeyId)],
    },
    rootSigner,
  );

  const issuingKey = await options.keyStore.generate(`sealed:${ISSUING_CA_ID}`, keyType);
  const issuingSpki = issuingKey.publicKey.export({ format: 'der', type: 'spki' });
  const issuingDer = await buildCertificate(
    {
      serialNumber: randomSerial(random),
      issuer: rootName,
      subject: encodeName(options.issuingSubject ?? DEFAULT_ISSUING),
      notBefore,
      notAfter: addValidity(now, { value: 5, scale: 'years' }),
      spki: issuingSpki,
      extensions: [
        ext.basicConstraints(true, 0),
        ext.keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']),
        ext.subjectKeyIdentifier(ext.keyIdentifier(issuingSpki)),
        ext.authorityKeyIdentifier(rootKeyId),
      ],
    },
    rootSigner,
  );

  const root: CaRecord = { id: ROOT_CA_ID, role: 'root', certificateDer: rootDer, chainDer: [], keyRef: rootKey.stored.keyRef, sealedKey: rootKey.stored.sealedKey, createdAt: now };
  const issuing: CaRecord = {
    id: ISSUING_CA_ID,
    role: 'issuing',
    certificateDer: issuingDer,
    chainDer: [rootDer],
    keyRef: issuingKey.stored.keyRef,
    sealedKey: issuingKey.stored.sealedKey,
    createdAt: now,
  };
  await options.store.putCa(root);
  await options.store.putCa(issuing);
  const issuingCert = decodeCertificate(issuingDer);
  // The issuing CA certificate is the root's issuance: recorded so that a root CRL could list it.
  await options.store.recordIssued({
    caId: ROOT_CA_ID,
    serialHex: issuingCert.serialHex,
    subject: nameToString(issuingCert.subject),
    emailAddresses: [],
    profile: 'issuingCa',
    requester: 'init',
    notBefore: issuingCert.notBefore,
    notAfter: issuingCert.notAfter,
    issuedAt: now,
    certificateDer: issuingDer,
    status: 'good',
    revokedAt: undefined,
    revocationReason: undefined,
  });
  const ca = new CertificateAuthority(options, issuing, signerFor(options.keyStore, issuingKey.stored, issuingKey.publicKey));
  await ca.generateCrl();
  return ca;
}

/**
 * Imports an existing issuing CA: its certificate must be a CA allowed to
 * sign certificates and CRLs, the key must be its key, and each chain
 * certificate must have signed the one below it.
 */
export async function importCa(options: ImportCaOptions): Promise<CertificateAuthority> {
  await refuseExisting(options);
  const cert = decodeCertificate(options.certificate);
  const chain = options.chain.map((d) => decodeCertificate(d));
  checkCaCertificate(cert, 'the imported issuing CA');
  if (cert.keyUsage && !cert.keyUsage.has('cRLSign')) throw new KeyfleetError('KF_CERT_INVALID', 'the imported issuing CA may not sign CRLs (keyUsage lacks cRLSign)');
  const { spec, description } = describeKey(options.privateKey);
  if (spec === undefined) throw new KeyfleetError('KF_KEY_INVALID', `the CA key (${description}) is not an accepted CA key type`);
  const publicSpki = createPublicKey(options.privateKey).export({ format: 'der', type: 'spki' });
  if (Buffer.compare(publicSpki, Buffer.from(cert.spki)) !== 0) throw new KeyfleetError('KF_KEY_INVALID', 'the private key does not belong to the imported CA certificate');
  let child = cert;
  for (const [i, parent] of chain.entries()) {
    checkCaCertificate(parent, `chain certificate ${i + 1}`);
    if (!issuedBy(child, parent)) throw new KeyfleetError('KF_CERT_INVALID', `chain certificate ${i + 1} (${nameToString(parent.subject)}) did not sign ${nameToString(child.subject)}`);
    child = parent;
  }
  const now = (options.clock ?? (() => new Date()))();
  const stored = await options.keyStore.importKey(`sealed:${ISSUING_CA_ID}`, options.privateKey);
  const record: CaRecord = {
    id: ISSUING_CA_ID,
    role: 'issuing',
    certificateDer: cert.der,
    chainDer: chain.map((c) => c.der),
    keyRef: stored.keyRef,
    sealedKey: stored.sealedKey,
    createdAt: now,
  };
  await options.store.putCa(record);
  const ca = new CertificateAuthority(options, record, signerFor(options.keyStore, stored, cert.publicKey));
  await ca.generateCrl();
  return ca;
}

/** Opens the CA set up earlier; KF_CA_NOT_INITIALISED when there is none. */
export async function openCa(options: CaOptions): Promise<CertificateAuthority> {
  const record = await options.store.getCa(ISSUING_CA_ID);
  if (!record) throw new KeyfleetError('KF_CA_NOT_INITIALISED', 'the certificate authority has not been set up (run `keyfleet ca init`)');
  const stored: StoredKey = { keyRef: record.keyRef, sealedKey: record.sealedKey };
  // Opening the key now surfaces a wrong KEK (KF_MASTER_KEY) here rather than at the first issuance.
  const publicKey = await options.keyStore.publicKey(stored);
  const cert = decodeCertificate(record.certificateDer);
  if (Buffer.compare(publicKey.export({ format: 'der', type: 'spki' }), Buffer.from(cert.spki)) !== 0) {
    throw new KeyfleetError('KF_KEY_INVALID', 'the stored CA key does not match the CA certificate');
  }
  return new CertificateAuthority(options, record, signerFor(options.keyStore, stored, cert.publicKey));
}

function checkCaCertificate(cert: Certificate, what: string): void {
  if (cert.basicConstraints?.cA !== true) throw new KeyfleetError('KF_CERT_INVALID', `${what} is not a CA certificate (basicConstraints cA is not set)`);
  if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) throw new KeyfleetError('KF_CERT_INVALID', `${what} may not sign certificates (keyUsage lacks keyCertSign)`);
}

function issuedBy(child: Certificate, parent: Certificate): boolean {
  if (!namesEqual(child.issuer, parent.subject)) return false;
  try {
    return verifySignature(signatureScheme(child.signatureAlgorithm), child.tbs, child.signatureValue, parent.publicKey);
  } catch {
    return false;
  }
}
