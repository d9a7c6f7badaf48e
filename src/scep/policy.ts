/**
 * What a SCEP profile allows and how a CSR is checked against it and
 * against the challenge that came with it (issue 3, "SCEP server"): key type
 * and size, subject and SAN exactly as the challenge allows. A refusal is a
 * CertRep FAILURE badRequest (RFC 8894 §3.3.2.2) and nothing is issued.
 */
import { KeyfleetError } from '../errors.ts';
import { OID } from '../asn1/oids.ts';
import type { Name } from '../x509/name.ts';
import type { ChallengeGrant } from './challenge.ts';
import { type CertificationRequest, describeKey } from './csr.ts';

export type CurveName = 'P-256' | 'P-384';

export interface ScepKeyPolicy {
  /** Allowed RSA modulus sizes. */
  readonly rsaBits: readonly number[];
  readonly ecCurves: readonly CurveName[];
}

/** The template's key choices of issue 3: RSA 2048/3072/4096, P-256/P-384. */
export const defaultKeyPolicy: ScepKeyPolicy = Object.freeze({ rsaBits: Object.freeze([2048, 3072, 4096]), ecCurves: Object.freeze(['P-256', 'P-384'] as const) });

/** A SCEP profile as the server needs it; the certificate template itself stays with the issuer. */
export interface ScepProfile {
  readonly name: string;
  readonly keyPolicy: ScepKeyPolicy;
  /** RenewalReq accepted (and "Renewal" announced in GetCACaps); default true. */
  readonly allowRenewal?: boolean;
}

const nodeCurve: Record<CurveName, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

/** Why the CSR's key is refused, or undefined when the profile allows it. */
export function keyRefusal(csr: CertificationRequest, policy: ScepKeyPolicy): string | undefined {
  const key = describeKey(csr.publicKey);
  if (key.type === 'rsa' && 'bits' in key) return policy.rsaBits.includes(key.bits) ? undefined : `RSA-${key.bits} keys are not allowed (allowed: ${policy.rsaBits.join(', ') || 'none'})`;
  if (key.type === 'ec' && 'curve' in key) return policy.ecCurves.some((c) => nodeCurve[c] === key.curve) ? undefined : `EC keys on ${key.curve} are not allowed`;
  return `${key.type} keys are not allowed`;
}

// ------------------------------------------------------------ subject names

const typeByShortName: Record<string, string> = {
  cn: OID.commonName,
  sn: OID.surname,
  serialnumber: OID.serialNumber,
  c: OID.countryName,
  l: OID.localityName,
  st: OID.stateOrProvinceName,
  o: OID.organizationName,
  ou: OID.organizationalUnitName,
  title: OID.title,
  gn: OID.givenName,
  givenname: OID.givenName,
  dc: OID.domainComponent,
  uid: OID.userId,
  emailaddress: OID.emailAddress,
  e: OID.emailAddress,
};

type Rdn = { readonly type: string; readonly value: string }[];

/**
 * Parses an RFC 4514 string (`CN=Alice,O=Example` — or OpenSSL's
 * `C=…, O=…, CN=…`): RDNs split on unescaped commas, multi-valued RDNs on
 * `+`, backslash escapes of RFC 4514 §2.4 honoured.
 */
export function parseDistinguishedName(text: string): Rdn[] {
  const rdns: Rdn[] = [];
  let current: Rdn = [];
  let token = '';
  let escaped = false;
  const flush = (endRdn: boolean) => {
    const eq = token.indexOf('=');
    if (eq <= 0) throw new KeyfleetError('KF_USAGE', `"${token.trim().slice(0, 40)}" is not a type=value pair of a distinguished name`);
    const typeText = token.slice(0, eq).trim();
    const type = typeByShortName[typeText.toLowerCase()] ?? (/^\d+(\.\d+)+$/.test(typeText) ? typeText : undefined);
    if (!type) throw new KeyfleetError('KF_USAGE', `unknown attribute type "${typeText.slice(0, 20)}" in a distinguished name`);
    current.push({ type, value: token.slice(eq + 1).replace(/\u0000/g, '').trim() });
    token = '';
    if (endRdn) {
      rdns.push(current);
      current = [];
    }
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (escaped) {
      const hex = text.slice(i, i + 2);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        token += String.fromCharCode(parseInt(hex, 16));
        i++;
      } else token += ch;
      escaped = false;
    } else if (ch === '\\') escaped = true;
    else if (ch === ',' || ch === ';') flush(true);
    else if (ch === '+') flush(false);
    else token += ch;
  }
  if (token.trim() !== '' || current.length > 0) flush(true);
  return rdns;
}

function normalise(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

function rdnsEqual(a: readonly (readonly { type: string; value: string }[])[], b: readonly Rdn[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((rdn, i) => {
    const other = b[i]!;
    if (rdn.length !== other.length) return false;
    const keys = new Set(other.map((x) => `${x.type}=${normalise(x.value)}`));
    return rdn.every((x) => keys.has(`${x.type}=${normalise(x.value)}`));
  });
}

/**
 * Whether `name` is the DN `text` (RFC 5280 §7.1 comparison: case- and
 * space-folded values). RFC 4514 writes the most specific RDN first and
 * OpenSSL's one-line form the reverse; both orders of `text` are accepted,
 * but the order must be one of them.
 */
export function subjectMatches(name: Name, text: string): boolean {
  const wanted = parseDistinguishedName(text);
  return rdnsEqual(name.rdns, wanted) || rdnsEqual(name.rdns, [...wanted].reverse());
}

/** Why the CSR's subject or SAN is not what the challenge allows, or undefined. */
export function identityRefusal(csr: CertificationRequest, grant: ChallengeGrant): string | undefined {
  const san = csr.subjectAltName;
  if (san && (san.dnsNames.length > 0 || san.uris.length > 0 || san.directoryNames.length > 0)) return 'the CSR asks for SAN names other than email addresses and UPNs';
  if (grant.subject !== undefined && !subjectMatches(csr.subject, grant.subject)) return 'the CSR subject is not the one the challenge allows';
  if (!grant.bindsIdentity) return undefined;
  const emails = (san?.rfc822Names ?? []).map((e) => e.toLowerCase());
  const wantEmails = grant.sanEmail === undefined ? [] : [grant.sanEmail.toLowerCase()];
  if (emails.length !== wantEmails.length || emails.some((e, i) => e !== wantEmails[i])) return 'the CSR SAN email is not the one the challenge allows';
  const upns = san?.upns ?? [];
  const wantUpns = grant.sanUpn === undefined ? [] : [grant.sanUpn];
  if (upns.length !== wantUpns.length || upns.some((u, i) => u.toLowerCase() !== wantUpns[i]!.toLowerCase())) return 'the CSR SAN UPN is not the one the challenge allows';
  return undefined;
}
