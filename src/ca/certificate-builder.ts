/**
 * Writing certificates (RFC 5280 §4.1):
 *
 *   TBSCertificate ::= SEQUENCE {
 *     version         [0]  EXPLICIT Version DEFAULT v1,
 *     serialNumber         CertificateSerialNumber,
 *     signature            AlgorithmIdentifier,
 *     issuer               Name,
 *     validity             Validity,
 *     subject              Name,
 *     subjectPublicKeyInfo SubjectPublicKeyInfo,
 *     issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
 *     subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
 *     extensions      [3]  EXPLICIT Extensions OPTIONAL }
 *
 * Always v3 with extensions; the unique identifiers are never written
 * (RFC 5280 §4.1.2.8: CAs conforming to this profile MUST NOT generate them).
 * Signing goes through a `CertificateSigner`, so the CA key can live in a
 * KeyStore, an HSM or a KMS and never be handled here.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import * as der from '../asn1/writer.ts';
import { KeyfleetError } from '../errors.ts';
import { type HashName, type SignatureScheme, encodeSignatureAlgorithm, schemeForKey } from '../x509/signature.ts';

/** Something that signs with a CA key it does not reveal. */
export interface CertificateSigner {
  /** The signer's public key (for its key identifier and scheme). */
  readonly publicKey: KeyObject;
  readonly scheme: SignatureScheme;
  /** The signature AlgorithmIdentifier (DER), written both inside and outside the signed structure. */
  readonly algorithm: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * The signature scheme a CA uses for its key: RSASSA-PKCS1-v1_5 with
 * SHA-256 for RSA (what every S/MIME client accepts), ECDSA with the hash
 * matching the curve for EC (RFC 5480 §4: P-256/SHA-256, P-384/SHA-384).
 */
export function caSignatureScheme(publicKey: KeyObject): SignatureScheme {
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  const hash: HashName = curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
  return schemeForKey(publicKey, hash);
}

/** A signer over a function that signs (a KeyStore, an HSM session, …). */
export function makeSigner(publicKey: KeyObject, sign: (scheme: SignatureScheme, data: Uint8Array) => Promise<Uint8Array>): CertificateSigner {
  const scheme = caSignatureScheme(publicKey);
  return { publicKey, scheme, algorithm: encodeSignatureAlgorithm(scheme, publicKey), sign: (data) => sign(scheme, data) };
}

export type RandomSource = (length: number) => Uint8Array;
export const defaultRandom: RandomSource = (n) => randomBytes(n);

/**
 * A 20-octet positive serial number (RFC 5280 §4.1.2.2: at most 20 octets,
 * positive), all random but the top bit, which is cleared so that no
 * leading zero octet is needed. A zero first octet is avoided too, so the
 * encoding is always exactly 20 octets. Returns the INTEGER contents octets.
 */
export function randomSerial(random: RandomSource = defaultRandom): Uint8Array {
  const serial = Uint8Array.from(random(20));
  if (serial.length !== 20) throw new KeyfleetError('KF_KEY_INVALID', 'random source returned the wrong number of bytes');
  serial[0] = serial[0]! & 0x7f;
  if (serial[0] === 0) serial[0] = 1;
  return serial;
}

export interface TbsCertificateFields {
  /** serialNumber contents octets (positive, as from randomSerial). */
  readonly serialNumber: Uint8Array;
  /** Name DER. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Uint8Array;
  /** Complete Extension encodings (see extensions.ts), in the order to write. */
  readonly extensions: readonly Uint8Array[];
}

/** Validity ::= SEQUENCE { notBefore Time, notAfter Time } — UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function encodeTbsCertificate(fields: TbsCertificateFields, signatureAlgorithm: Uint8Array): Uint8Array {
  if (fields.notAfter.getTime() <= fields.notBefore.getTime()) {
    throw new KeyfleetError('KF_USAGE', 'certificate validity must end after it begins');
  }
  const first = fields.serialNumber[0];
  if (first === undefined || fields.serialNumber.length > 20 || (first & 0x80) !== 0) {
    throw new KeyfleetError('KF_USAGE', 'serial number must be positive and at most 20 octets (RFC 5280 §4.1.2.2)');
  }
  return der.sequence(
    der.explicit(0, der.integer(2)),
    der.integerFromContents(fields.serialNumber),
    signatureAlgorithm,
    fields.issuer,
    der.sequence(der.time(fields.notBefore), der.time(fields.notAfter)),
    fields.subject,
    fields.spki,
    ...(fields.extensions.length > 0 ? [der.explicit(3, der.sequence(...fields.extensions))] : []),
  );
}

/** Encodes and signs a certificate; returns its DER. */
export async function buildCertificate(fields: TbsCertificateFields, signer: CertificateSigner): Promise<Uint8Array> {
  return signStructure(encodeTbsCertificate(fields, signer.algorithm), signer);
}

/** Signs a TBS structure (TBSCertificate, TBSCertList, …) into `SEQUENCE { tbs, algorithm, BIT STRING }`. */
export async function signStructure(tbs: Uint8Array, signer: CertificateSigner): Promise<Uint8Array> {
  const signature = await signer.sign(tbs);
  return der.sequence(tbs, signer.algorithm, der.bitString(signature));
}
