/**
 * What a signer announces about receiving encrypted mail (RFC 8551 §2.5):
 *
 *   SMIMECapabilities ::= SEQUENCE OF SMIMECapability
 *   SMIMECapability ::= SEQUENCE {
 *     capabilityID OBJECT IDENTIFIER,
 *     parameters ANY DEFINED BY capabilityID OPTIONAL }
 *
 *   SMIMEEncryptionKeyPreference ::= CHOICE {
 *     issuerAndSerialNumber   [0] IssuerAndSerialNumber,
 *     receipentKeyId          [1] RecipientKeyIdentifier,
 *     subjectAltKeyIdentifier [2] SubjectKeyIdentifier }
 *
 * (IMPLICIT tags, RFC 8551 Appendix A.) Microsoft clients read their own
 * attribute 1.3.6.1.4.1.311.16.4 holding a plain IssuerAndSerialNumber, so we
 * write both and read both (REFERENCE.md pitfall 10).
 */
import { type Tlv, SequenceReader, Tag, children, contents, isContext, raw, readOctets, readOid } from '../../asn1/reader.ts';
import { OID } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { singleAttributeValue, encodeAttribute } from './attributes.ts';
import { type SignerInfo, decodeIssuerAndSerialNumber, encodeIssuerAndSerialNumber, matchesIssuerAndSerial } from './signer-info.ts';

export type SmimeCapability = { readonly capabilityID: string; readonly parameters?: Uint8Array };

/**
 * Our preference list, strongest first (RFC 8551 §2.7: AES-128-GCM and
 * AES-256-GCM in AuthEnvelopedData, AES-CBC for older receivers). The AES
 * capabilities carry no parameters (RFC 3565 §4; the same convention for GCM).
 */
export const defaultCapabilities: readonly SmimeCapability[] = Object.freeze([
  { capabilityID: OID.aes256GCM },
  { capabilityID: OID.aes128GCM },
  { capabilityID: OID.aes256CBC },
  { capabilityID: OID.aes192CBC },
  { capabilityID: OID.aes128CBC },
]);

/** SMIMECapabilities DER (the SEQUENCE OF, in preference order). */
export function encodeSmimeCapabilities(capabilities: readonly SmimeCapability[]): Uint8Array {
  return der.sequence(...capabilities.map((c) => (c.parameters ? der.sequence(der.oid(c.capabilityID), c.parameters) : der.sequence(der.oid(c.capabilityID)))));
}

export function decodeSmimeCapabilities(tlv: Tlv): SmimeCapability[] {
  if (tlv.cls !== 0 || tlv.tag !== Tag.sequence) return [];
  return children(tlv).map((c) => {
    const r = new SequenceReader(c, 'SMIMECapability');
    const capabilityID = readOid(r.next(Tag.oid));
    const parameters = r.hasMore() ? raw(r.next()) : undefined;
    return parameters ? { capabilityID, parameters } : { capabilityID };
  });
}

const capabilitiesCache = new WeakMap<readonly SmimeCapability[], Uint8Array>();

/** The smimeCapabilities attribute; cached per list, so the default list is encoded once. */
export function capabilitiesAttribute(capabilities: readonly SmimeCapability[]): Uint8Array {
  let enc = capabilitiesCache.get(capabilities);
  if (!enc) {
    enc = encodeAttribute(OID.smimeCapabilities, encodeSmimeCapabilities(capabilities));
    capabilitiesCache.set(capabilities, enc);
  }
  return enc;
}

const preferenceCache = new WeakMap<Certificate, readonly Uint8Array[]>();

/**
 * The two encryption-key-preference attributes naming `cert`: RFC 8551's with
 * the issuerAndSerialNumber choice, and Microsoft's. Cached per certificate.
 */
export function encryptionKeyPreferenceAttributes(cert: Certificate): readonly Uint8Array[] {
  let attrs = preferenceCache.get(cert);
  if (!attrs) {
    const ias = encodeIssuerAndSerialNumber(cert);
    attrs = [encodeAttribute(OID.smimeEncryptionKeyPreference, der.retag(ias, 0)), encodeAttribute(OID.msOutlookEncryptionKeyPreference, ias)];
    preferenceCache.set(cert, attrs);
  }
  return attrs;
}

/**
 * The capabilities a signer announced in its signed attributes, in its order
 * of preference; undefined when it announced none (then RFC 8551 §2.7.1
 * leaves the sender to its defaults). Malformed values read as none.
 */
export function signerCapabilities(si: SignerInfo): SmimeCapability[] | undefined {
  if (!si.signedAttrs) return undefined;
  try {
    const v = singleAttributeValue(si.signedAttrs.attributes, OID.smimeCapabilities);
    return v === undefined ? undefined : decodeSmimeCapabilities(v);
  } catch {
    return undefined;
  }
}

/**
 * The certificate the signer prefers for encryption to it (RFC 8551 §2.5.3),
 * looked up among `certificates`; Microsoft's attribute is the fallback.
 * Undefined when neither attribute names a certificate that is at hand.
 */
export function signerEncryptionKeyPreference(si: SignerInfo, certificates: readonly Certificate[]): Certificate | undefined {
  if (!si.signedAttrs) return undefined;
  const attrs = si.signedAttrs.attributes;
  try {
    const pref = singleAttributeValue(attrs, OID.smimeEncryptionKeyPreference);
    if (pref?.cls === 2) {
      const found = certificates.find((c) => matchesPreference(pref, c));
      if (found) return found;
    }
    const ms = singleAttributeValue(attrs, OID.msOutlookEncryptionKeyPreference);
    if (ms) {
      const ias = decodeIssuerAndSerialNumber(ms);
      return certificates.find((c) => matchesIssuerAndSerial(ias, c));
    }
  } catch {
    // A malformed preference is no preference.
  }
  return undefined;
}

function matchesPreference(pref: Tlv, cert: Certificate): boolean {
  if (isContext(pref, 0)) return matchesIssuerAndSerial(decodeIssuerAndSerialNumber(pref), cert);
  let ski: Uint8Array | undefined;
  // RecipientKeyIdentifier ::= SEQUENCE { subjectKeyIdentifier, date OPTIONAL, other OPTIONAL } (RFC 5652 §6.2.2)
  if (isContext(pref, 1)) ski = readOctets(new SequenceReader(pref, 'RecipientKeyIdentifier').next(Tag.octetString));
  if (isContext(pref, 2)) ski = pref.constructed ? readOctets(pref) : contents(pref);
  return ski !== undefined && cert.subjectKeyIdentifier !== undefined && Buffer.compare(ski, cert.subjectKeyIdentifier) === 0;
}
