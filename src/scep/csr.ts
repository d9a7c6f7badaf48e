/**
 * PKCS#10 certification requests (RFC 2986), as SCEP carries them, with the
 * PKCS#9 attributes SCEP uses (RFC 8894 §3.3.1: challengePassword,
 * extensionRequest).
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo CertificationRequestInfo,
 *     signatureAlgorithm AlgorithmIdentifier,
 *     signature BIT STRING }
 *
 *   CertificationRequestInfo ::= SEQUENCE {
 *     version INTEGER { v1(0) },
 *     subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo,
 *     attributes [0] IMPLICIT SET OF Attribute }
 *
 * Requests are decoded by the CA (src/ca/csr.ts: decodeCsr,
 * verifyCsrSignature); this module holds the client's side — the encoder
 * SCEP clients (tests, the device agent) use — and the key description
 * the profile policy checks.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type HashName, createSignature, encodeSignatureAlgorithm, schemeForKey } from '../x509/signature.ts';
import { SCEP_OID } from './oids.ts';

export type { CertificationRequest } from '../ca/csr.ts';

/** A key as policy sees it: RSA with its modulus size, or EC with its curve. */
export type KeyDescription = { readonly type: 'rsa'; readonly bits: number } | { readonly type: 'ec'; readonly curve: string } | { readonly type: string };

export function describeKey(key: KeyObject): KeyDescription {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type === 'rsa') return { type, bits: key.asymmetricKeyDetails?.modulusLength ?? 0 };
  if (type === 'ec') return { type, curve: key.asymmetricKeyDetails?.namedCurve ?? 'unknown' };
  return { type };
}

export interface CsrFields {
  /** Subject Name DER (see encodeName in src/x509/name.ts). */
  readonly subject: Uint8Array;
  readonly challengePassword?: string;
  readonly sanEmails?: readonly string[];
  readonly sanUpns?: readonly string[];
  readonly digest?: HashName;
}

/** Builds and signs a PKCS#10 request for `key` (a client's side of enrolment). */
export function encodeCertificationRequest(fields: CsrFields, privateKey: KeyObject): Uint8Array {
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const attributes: Uint8Array[] = [];
  if (fields.challengePassword !== undefined) {
    // DirectoryString: PrintableString when it fits (what OpenSSL writes), else UTF8String.
    const value = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(fields.challengePassword) ? der.printableString(fields.challengePassword) : der.utf8String(fields.challengePassword);
    attributes.push(der.sequence(der.oid(SCEP_OID.challengePassword), der.setOf(value)));
  }
  const general: Uint8Array[] = [];
  for (const e of fields.sanEmails ?? []) general.push(der.implicitPrimitive(1, Buffer.from(e, 'latin1')));
  for (const u of fields.sanUpns ?? []) general.push(der.explicit(0, der.oid(OID.msUpn), der.explicit(0, der.utf8String(u))));
  if (general.length > 0) {
    const san = der.sequence(der.oid(OID.subjectAltName), der.octetString(der.sequence(...general)));
    attributes.push(der.sequence(der.oid(SCEP_OID.extensionRequest), der.setOf(der.sequence(san))));
  }
  const info = der.sequence(der.integer(0), fields.subject, spki, der.retag(der.setOf(...attributes), 0));
  const scheme = schemeForKey(privateKey, fields.digest ?? 'sha256');
  const signature = createSignature(scheme, info, privateKey);
  return der.sequence(info, encodeSignatureAlgorithm(scheme, publicKey), der.bitString(signature));
}
