/**
 * Name (RFC 5280 §4.1.2.4): a sequence of relative distinguished names, each
 * a set of (type, value) pairs. The encoding as received is kept for exact
 * comparison; a normalised form implements the comparison rules of
 * RFC 5280 §7.1 (case-insensitive, whitespace-folded) for producers that
 * re-encode names.
 */
import { type Tlv, SequenceReader, Tag, children, raw, readOid, readString } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import { KeyfleetError } from '../errors.ts';
import * as der from '../asn1/writer.ts';

export interface AttributeTypeAndValue {
  readonly type: string;
  readonly value: string;
}

export interface Name {
  readonly der: Uint8Array;
  readonly rdns: readonly (readonly AttributeTypeAndValue[])[];
}

export function decodeName(tlv: Tlv): Name {
  if (tlv.cls !== 0 || tlv.tag !== Tag.sequence) throw new KeyfleetError('KF_ASN1_MALFORMED', 'Name: expected a SEQUENCE');
  const rdns = children(tlv).map((set) =>
    children(set).map((atv) => {
      const r = new SequenceReader(atv, 'AttributeTypeAndValue');
      const type = readOid(r.next(Tag.oid));
      const v = r.next();
      let value: string;
      try {
        value = readString(v);
      } catch {
        value = `#${Buffer.from(raw(v)).toString('hex')}`;
      }
      return { type, value };
    }),
  );
  return { der: raw(tlv), rdns };
}

const shortNames: Record<string, string> = {
  [OID.commonName]: 'CN',
  [OID.surname]: 'SN',
  [OID.serialNumber]: 'serialNumber',
  [OID.countryName]: 'C',
  [OID.localityName]: 'L',
  [OID.stateOrProvinceName]: 'ST',
  [OID.organizationName]: 'O',
  [OID.organizationalUnitName]: 'OU',
  [OID.title]: 'title',
  [OID.givenName]: 'GN',
  [OID.domainComponent]: 'DC',
  [OID.userId]: 'UID',
  [OID.emailAddress]: 'emailAddress',
};
const byShortName = new Map(Object.entries(shortNames).map(([oid, n]) => [n.toLowerCase(), oid]));

/** An RFC 4514-style string, most significant RDN first as OpenSSL prints with -nameopt RFC2253 reversed (C=…, O=…, CN=…). */
export function nameToString(name: Name): string {
  return name.rdns
    .map((rdn) => rdn.map((a) => `${shortNames[a.type] ?? a.type}=${a.value.replace(/([,+"\\<>;])/g, '\\$1')}`).join('+'))
    .join(', ');
}

function normalise(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

/** Name equality per RFC 5280 §7.1 (exact encoding, or equal after case and space folding). */
export function namesEqual(a: Name, b: Name): boolean {
  if (Buffer.compare(a.der, b.der) === 0) return true;
  if (a.rdns.length !== b.rdns.length) return false;
  return a.rdns.every((rdn, i) => {
    const other = b.rdns[i]!;
    if (rdn.length !== other.length) return false;
    const key = (x: AttributeTypeAndValue) => `${x.type}=${normalise(x.value)}`;
    const set = new Set(other.map(key));
    return rdn.every((x) => set.has(key(x)));
  });
}

/** The values of one attribute type (e.g. every emailAddress in the subject). */
export function nameValues(name: Name, type: string): string[] {
  return name.rdns.flatMap((rdn) => rdn.filter((a) => a.type === type).map((a) => a.value));
}

/**
 * Encodes a Name from `[type, value]` pairs (one attribute per RDN), most
 * significant first. Country, serial number and emailAddress use the string
 * types RFC 5280 requires; everything else UTF8String.
 */
export function encodeName(attributes: readonly (readonly [string, string])[]): Uint8Array {
  return der.sequence(
    ...attributes.map(([typeOrShort, value]) => {
      const type = byShortName.get(typeOrShort.toLowerCase()) ?? typeOrShort;
      const v =
        type === OID.countryName || type === OID.serialNumber
          ? der.printableString(value)
          : type === OID.emailAddress || type === OID.domainComponent
            ? der.ia5String(value)
            : der.utf8String(value);
      return der.setOf(der.sequence(der.oid(type), v));
    }),
  );
}
