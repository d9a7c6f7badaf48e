/**
 * Encoders for the certificate extensions the CA writes (RFC 5280 §4.2).
 * Each returns a complete `Extension`:
 *
 *   Extension ::= SEQUENCE {
 *     extnID      OBJECT IDENTIFIER,
 *     critical    BOOLEAN DEFAULT FALSE,
 *     extnValue   OCTET STRING }
 *
 * DER forbids encoding a DEFAULT value, so `critical` appears only when true
 * (X.690 §11.5).
 */
import { createHash } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import { SequenceReader, Tag, contents, parse } from '../asn1/reader.ts';
import * as der from '../asn1/writer.ts';
import { KeyUsageBits, type KeyUsage } from '../x509/certificate.ts';

/** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1); not in oids.ts. */

export function extension(oid: string, value: Uint8Array, critical = false): Uint8Array {
  return critical ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

/**
 *   BasicConstraints ::= SEQUENCE {
 *     cA                 BOOLEAN DEFAULT FALSE,
 *     pathLenConstraint  INTEGER (0..MAX) OPTIONAL }
 *
 * Always critical: RFC 5280 §4.2.1.9 requires it for CAs, and marking it on
 * end entities too keeps `openssl verify -x509_strict` content.
 */
export function basicConstraints(ca: boolean, pathLen?: number): Uint8Array {
  const fields: Uint8Array[] = [];
  if (ca) fields.push(der.boolean(true));
  if (ca && pathLen !== undefined) fields.push(der.integer(pathLen));
  return extension(OID.basicConstraints, der.sequence(...fields), true);
}

/** KeyUsage ::= BIT STRING { digitalSignature (0), … } — critical (RFC 5280 §4.2.1.3 SHOULD). */
export function keyUsage(usages: Iterable<KeyUsage>): Uint8Array {
  const bits = [...new Set(usages)].map((u) => KeyUsageBits.indexOf(u));
  return extension(OID.keyUsage, der.namedBits(bits), true);
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (RFC 5280 §4.2.1.12). */
export function extKeyUsage(purposes: readonly string[]): Uint8Array {
  return extension(OID.extKeyUsage, der.sequence(...purposes.map((p) => der.oid(p))));
}

/**
 * The key identifier of RFC 5280 §4.2.1.2 method (1): SHA-1 of the
 * subjectPublicKey BIT STRING value (without tag, length and unused-bits
 * octet), taken from a SubjectPublicKeyInfo encoding.
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const r = new SequenceReader(parse(spki), 'SubjectPublicKeyInfo');
  r.next(Tag.sequence);
  const bits = contents(r.next(Tag.bitString));
  return createHash('sha1').update(bits.subarray(1)).digest();
}

/** SubjectKeyIdentifier ::= KeyIdentifier (OCTET STRING). */
export function subjectKeyIdentifier(keyId: Uint8Array): Uint8Array {
  return extension(OID.subjectKeyIdentifier, der.octetString(keyId));
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, … } — only the key identifier (RFC 5280 §4.2.1.1). */
export function authorityKeyIdentifier(keyId: Uint8Array): Uint8Array {
  return extension(OID.authorityKeyIdentifier, der.sequence(der.implicitPrimitive(0, keyId)));
}

export interface SubjectAltNames {
  readonly emails?: readonly string[];
  /** Microsoft UPNs (otherName 1.3.6.1.4.1.311.20.2.3). */
  readonly upns?: readonly string[];
}

/**
 *   GeneralName ::= CHOICE {
 *     otherName   [0] OtherName,    -- OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
 *     rfc822Name  [1] IA5String, … }
 *
 * The UPN value is a UTF8String inside the [0] EXPLICIT (Microsoft's
 * definition, as Windows and OpenSSL write it). Critical when the subject is
 * empty (RFC 5280 §4.2.1.6).
 */
export function subjectAltName(names: SubjectAltNames, subjectEmpty = false): Uint8Array | undefined {
  const general: Uint8Array[] = [];
  for (const e of names.emails ?? []) general.push(der.implicitPrimitive(1, Buffer.from(e, 'latin1')));
  for (const u of names.upns ?? []) general.push(der.explicit(0, der.oid(OID.msUpn), der.explicit(0, der.utf8String(u))));
  if (general.length === 0) return undefined;
  return extension(OID.subjectAltName, der.sequence(...general), subjectEmpty);
}

/**
 *   CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
 *   DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, … }
 *   DistributionPointName ::= CHOICE { fullName [0] GeneralNames, … }
 *
 * One distribution point with the URIs as its full name (RFC 5280 §4.2.1.13).
 */
export function crlDistributionPoints(uris: readonly string[]): Uint8Array {
  const fullName = der.explicit(0, ...uris.map((u) => der.implicitPrimitive(6, Buffer.from(u, 'latin1'))));
  return extension(OID.cRLDistributionPoints, der.sequence(der.sequence(der.explicit(0, fullName))));
}

/** AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription { accessMethod OID, accessLocation GeneralName } (RFC 5280 §4.2.2.1). */
export function authorityInfoAccess(access: { readonly ocsp?: readonly string[]; readonly caIssuers?: readonly string[] }): Uint8Array | undefined {
  const descriptions = [
    ...(access.ocsp ?? []).map((u) => der.sequence(der.oid(OID.adOcsp), der.implicitPrimitive(6, Buffer.from(u, 'latin1')))),
    ...(access.caIssuers ?? []).map((u) => der.sequence(der.oid(OID.adCaIssuers), der.implicitPrimitive(6, Buffer.from(u, 'latin1')))),
  ];
  return descriptions.length === 0 ? undefined : extension(OID.authorityInfoAccess, der.sequence(...descriptions));
}

/**
 *   certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
 *   PolicyInformation ::= SEQUENCE { policyIdentifier CertPolicyId, policyQualifiers … OPTIONAL }
 *
 * Identifiers only; qualifiers are discouraged (RFC 5280 §4.2.1.4).
 */
export function certificatePolicies(policyOids: readonly string[]): Uint8Array {
  return extension(OID.certificatePolicies, der.sequence(...policyOids.map((p) => der.sequence(der.oid(p)))));
}

/** id-pkix-ocsp-nocheck: NULL; tells clients not to check the responder certificate's own status (RFC 6960 §4.2.2.2.1). */
export function ocspNoCheck(): Uint8Array {
  return extension(OID.ocspNoCheck, der.nullValue());
}
