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
 * A minimal decoder written for SCEP while src/ca/csr.ts did not yet exist
 * (reported as a duplication to fold into the CA's decoder). The encoder
 * serves SCEP clients (tests, the device agent).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { SequenceReader, Tag, children, parse, raw, readBitString, readOctets, readOid, readSmallInt, readString } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import { type GeneralNames, decodeGeneralNames } from '../x509/certificate.ts';
import { type Name, decodeName } from '../x509/name.ts';
import { type HashName, createSignature, encodeSignatureAlgorithm, schemeForKey, signatureScheme, verifySignature } from '../x509/signature.ts';
import { SCEP_OID } from './oids.ts';

export interface CertificationRequest {
  /** The request as received. */
  readonly der: Uint8Array;
  /** CertificationRequestInfo as received: what the signature covers. */
  readonly info: Uint8Array;
  readonly subject: Name;
  /** SubjectPublicKeyInfo as received. */
  readonly spki: Uint8Array;
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Uint8Array;
  /** The challengePassword attribute (RFC 2985 §5.4.1), when present. */
  readonly challengePassword: string | undefined;
  /** The subjectAltName of the extensionRequest attribute, when requested. */
  readonly subjectAltName: GeneralNames | undefined;
  /** OIDs of every extension requested. */
  readonly requestedExtensions: readonly string[];
}

/** A key as policy sees it: RSA with its modulus size, or EC with its curve. */
export type KeyDescription = { readonly type: 'rsa'; readonly bits: number } | { readonly type: 'ec'; readonly curve: string } | { readonly type: string };

export function describeKey(key: KeyObject): KeyDescription {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type === 'rsa') return { type, bits: key.asymmetricKeyDetails?.modulusLength ?? 0 };
  if (type === 'ec') return { type, curve: key.asymmetricKeyDetails?.namedCurve ?? 'unknown' };
  return { type };
}

function malformed(message: string, cause?: unknown): KeyfleetError {
  return new KeyfleetError('KF_ASN1_MALFORMED', `PKCS#10 request: ${message}`, cause === undefined ? undefined : { cause });
}

/** Decodes a DER PKCS#10 request. Nothing is verified here (see csrSignatureValid). */
export function decodeCertificationRequest(bytes: Uint8Array): CertificationRequest {
  try {
    const top = new SequenceReader(parse(bytes), 'CertificationRequest');
    const infoTlv = top.next(Tag.sequence);
    const signatureAlgorithm = decodeAlgorithmIdentifier(top.next(Tag.sequence));
    const bits = readBitString(top.next(Tag.bitString));
    top.end();
    if (bits.unusedBits !== 0) throw malformed('signature BIT STRING has unused bits');
    const r = new SequenceReader(infoTlv, 'CertificationRequestInfo');
    const version = readSmallInt(r.next(Tag.integer));
    if (version !== 0) throw malformed(`version ${version} is not v1(0)`);
    const subject = decodeName(r.next(Tag.sequence));
    const spki = raw(r.next(Tag.sequence));
    const attrs = r.optionalContext(0);
    r.end();
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    } catch (e) {
      throw new KeyfleetError('KF_KEY_INVALID', 'PKCS#10 request: the public key cannot be loaded', { cause: e });
    }
    let challengePassword: string | undefined;
    let subjectAltName: GeneralNames | undefined;
    const requestedExtensions: string[] = [];
    for (const a of attrs ? children(attrs) : []) {
      const ar = new SequenceReader(a, 'Attribute');
      const type = readOid(ar.next(Tag.oid));
      const values = children(ar.next(Tag.set));
      ar.end();
      if (type === SCEP_OID.challengePassword) {
        if (values.length !== 1 || challengePassword !== undefined) throw malformed('challengePassword must occur once with one value');
        challengePassword = readString(values[0]!);
      } else if (type === SCEP_OID.extensionRequest) {
        for (const v of values) {
          for (const ext of children(v)) {
            const er = new SequenceReader(ext, 'Extension');
            const extnID = readOid(er.next(Tag.oid));
            er.optional(Tag.boolean);
            const value = er.next(Tag.octetString);
            er.end();
            requestedExtensions.push(extnID);
            if (extnID === OID.subjectAltName) subjectAltName = decodeGeneralNames(parse(readOctets(value)));
          }
        }
      }
    }
    return { der: bytes, info: raw(infoTlv), subject, spki, publicKey, signatureAlgorithm, signature: bits.bytes, challengePassword, subjectAltName, requestedExtensions };
  } catch (e) {
    if (isKeyfleetError(e, 'KF_KEY_INVALID')) throw e;
    if (e instanceof KeyfleetError) throw malformed(e.message, e);
    throw malformed(e instanceof Error ? e.message : String(e), e);
  }
}

/** Whether the request is signed by the key it carries (RFC 2986 §3: proof of possession). */
export function csrSignatureValid(csr: CertificationRequest): boolean {
  try {
    return verifySignature(signatureScheme(csr.signatureAlgorithm), csr.info, csr.signature, csr.publicKey);
  } catch {
    return false;
  }
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
