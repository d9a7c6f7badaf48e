/**
 * PKCS#10 certification requests (RFC 2986 §4):
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo  CertificationRequestInfo,
 *     signatureAlgorithm        AlgorithmIdentifier,
 *     signature                 BIT STRING }
 *
 *   CertificationRequestInfo ::= SEQUENCE {
 *     version        INTEGER { v1(0) },
 *     subject        Name,
 *     subjectPKInfo  SubjectPublicKeyInfo,
 *     attributes     [0] IMPLICIT SET OF Attribute }
 *
 *   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
 *
 * The attributes SCEP uses (RFC 8894 §3.3.1) are decoded: challengePassword
 * (RFC 2985 §5.4.1) and extensionRequest (RFC 2985 §5.4.2), whose
 * subjectAltName, keyUsage and extKeyUsage are what the requester asks for.
 * The signature (proof of possession) is checked over the info as received.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, bit, children, parse, raw, readBitString, readBoolean, readOctets, readOid, readSmallInt, readString } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import { decodePemAll, looksLikePem } from '../asn1/pem.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import { type Extension, type GeneralNames, type KeyUsage, KeyUsageBits, decodeGeneralNames } from '../x509/certificate.ts';
import { type Name, decodeName } from '../x509/name.ts';
import { signatureScheme, verifySignature } from '../x509/signature.ts';

/** pkcs-9-at-challengePassword and pkcs-9-at-extensionRequest (RFC 2985); not in oids.ts. */

/** A CSR larger than this is refused before parsing (real ones are a few KB). */
export const MAX_CSR_LENGTH = 64 * 1024;

export interface CsrAttribute {
  readonly type: string;
  /** The values as received. */
  readonly values: readonly Uint8Array[];
}

export interface CertificationRequest {
  readonly der: Uint8Array;
  /** CertificationRequestInfo as received: what the signature covers. */
  readonly info: Uint8Array;
  readonly version: number;
  readonly subject: Name;
  /** SubjectPublicKeyInfo as received. */
  readonly spki: Uint8Array;
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signatureValue: Uint8Array;
  readonly attributes: readonly CsrAttribute[];
  readonly challengePassword: string | undefined;
  /** Extensions from extensionRequest (empty when none). */
  readonly requestedExtensions: readonly Extension[];
  readonly subjectAltName: GeneralNames | undefined;
  readonly keyUsage: ReadonlySet<KeyUsage> | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
}

/** Decodes a DER CSR without checking its signature. KF_ASN1_MALFORMED for anything that is not one. */
export function decodeCsr(bytes: Uint8Array): CertificationRequest {
  if (bytes.length > MAX_CSR_LENGTH) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `certification request larger than ${MAX_CSR_LENGTH} bytes`);
  try {
    return decode(Uint8Array.from(bytes));
  } catch (e) {
    if (e instanceof KeyfleetError && (e.code === 'KF_ASN1_LIMIT' || e.code === 'KF_KEY_INVALID')) throw e;
    throw new KeyfleetError('KF_ASN1_MALFORMED', `certification request cannot be parsed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** True when the CSR is signed by the key it carries (RFC 2986 §3 proof of possession). */
export function verifyCsrSignature(csr: CertificationRequest): boolean {
  try {
    return verifySignature(signatureScheme(csr.signatureAlgorithm), csr.info, csr.signatureValue, csr.publicKey);
  } catch {
    return false;
  }
}

/** Decodes a CSR (PEM "CERTIFICATE REQUEST" or DER) and requires a valid signature (KF_KEY_INVALID otherwise). */
export function loadCsr(bytes: Uint8Array): CertificationRequest {
  let derBytes = bytes;
  if (looksLikePem(bytes)) {
    const block = decodePemAll(Buffer.from(bytes).toString('latin1')).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
    if (!block) throw new KeyfleetError('KF_ASN1_MALFORMED', 'no CERTIFICATE REQUEST block in PEM input');
    derBytes = block.der;
  }
  const csr = decodeCsr(derBytes);
  if (!verifyCsrSignature(csr)) throw new KeyfleetError('KF_KEY_INVALID', 'the certification request signature does not verify with its own public key');
  return csr;
}

function decode(bytes: Uint8Array): CertificationRequest {
  const outer = new SequenceReader(parse(bytes), 'CertificationRequest');
  const infoTlv = outer.next(Tag.sequence);
  const signatureAlgorithm = decodeAlgorithmIdentifier(outer.next(Tag.sequence));
  const signatureValue = readBitString(outer.next(Tag.bitString));
  if (signatureValue.unusedBits !== 0) throw new Error('signature BIT STRING has unused bits');
  outer.end();

  const r = new SequenceReader(infoTlv, 'CertificationRequestInfo');
  const version = readSmallInt(r.next(Tag.integer));
  if (version !== 0) throw new Error(`unsupported version ${version}`);
  const subject = decodeName(r.next(Tag.sequence));
  const spkiTlv = r.next(Tag.sequence);
  // Some old clients omit the (mandatory) attributes field; treat as empty.
  const attrTlv = r.optionalContext(0);
  r.end();
  const spki = raw(spkiTlv);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw new KeyfleetError('KF_KEY_INVALID', 'the certification request carries an unusable public key', { cause: e });
  }

  const attributes: CsrAttribute[] = [];
  let challengePassword: string | undefined;
  let requestedExtensions: Extension[] = [];
  for (const a of attrTlv ? children(attrTlv) : []) {
    const ar = new SequenceReader(a, 'Attribute');
    const type = readOid(ar.next(Tag.oid));
    const values = children(ar.next(Tag.set));
    ar.end();
    if (values.length === 0) throw new Error('attribute without values');
    attributes.push({ type, values: values.map(raw) });
    if (type === OID.challengePassword) challengePassword = readString(values[0]!);
    if (type === OID.extensionRequest) requestedExtensions = decodeExtensions(values[0]!);
  }

  const ext = (oid: string) => requestedExtensions.find((e) => e.extnID === oid);
  const sanExt = ext(OID.subjectAltName);
  const kuExt = ext(OID.keyUsage);
  const ekuExt = ext(OID.extKeyUsage);
  let keyUsage: Set<KeyUsage> | undefined;
  if (kuExt) {
    const bits = readBitString(parse(kuExt.extnValue));
    keyUsage = new Set(KeyUsageBits.filter((_, i) => bit(bits, i)));
  }
  return {
    der: bytes,
    info: raw(infoTlv),
    version,
    subject,
    spki,
    publicKey,
    signatureAlgorithm,
    signatureValue: signatureValue.bytes,
    attributes,
    challengePassword,
    requestedExtensions,
    subjectAltName: sanExt ? decodeGeneralNames(parse(sanExt.extnValue)) : undefined,
    keyUsage,
    extKeyUsage: ekuExt ? children(parse(ekuExt.extnValue)).map(readOid) : undefined,
  };
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension; a repeated extension is refused (RFC 5280 §4.2). */
function decodeExtensions(tlv: Tlv): Extension[] {
  const out: Extension[] = [];
  for (const e of children(tlv)) {
    const r = new SequenceReader(e, 'Extension');
    const extnID = readOid(r.next(Tag.oid));
    const criticalTlv = r.optional(Tag.boolean);
    const critical = criticalTlv ? readBoolean(criticalTlv) : false;
    const extnValue = readOctets(r.next(Tag.octetString));
    r.end();
    if (out.some((x) => x.extnID === extnID)) throw new Error(`extension ${extnID} requested twice`);
    out.push({ extnID, critical, extnValue });
  }
  return out;
}
