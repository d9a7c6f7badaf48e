/**
 * Subject names and subject alternative names built from a user's (and
 * device's) attributes, with the formats of Intune's certificate profiles
 * (`iosScepCertificateProfile.subjectNameFormat` and
 * `subjectNameFormatString`, REFERENCE.md "Graph shapes"):
 *
 *   commonName                CN={{UserName}}
 *   commonNameAsEmail         CN={{EmailAddress}}
 *   commonNameIncludingEmail  CN={{UserName}},E={{EmailAddress}}
 *   custom                    any string such as `CN={{AAD_Device_ID}},O=Contoso`
 *
 * Format strings read like RFC 4514 strings: comma-separated `TYPE=value`,
 * most specific (CN) first, so the Name is encoded in the reverse order.
 * Variables are checked when a profile is created (unknown ones are an
 * error then, not at issuance); a variable the user has no value for is an
 * error at issuance.
 */
import { OID } from '../asn1/oids.ts';
import { KeyfleetError } from '../errors.ts';
import { type Name, decodeName, encodeName, nameToString } from '../x509/name.ts';
import { parse } from '../asn1/reader.ts';

export const SubjectNameFormats = ['commonName', 'commonNameAsEmail', 'commonNameIncludingEmail', 'custom'] as const;
export type SubjectNameFormat = (typeof SubjectNameFormats)[number];

export const SubjectAltNameTypes = ['emailAddress', 'userPrincipalName'] as const;
export type SubjectAltNameType = (typeof SubjectAltNameTypes)[number];

/** What is known about the user and device a certificate is for. */
export interface SubjectAttributes {
  readonly userName?: string;
  readonly userPrincipalName?: string;
  readonly emailAddress?: string;
  readonly displayName?: string;
  /** Entra (AAD) device id, or Keyfleet's own device id. */
  readonly deviceId?: string;
  readonly deviceName?: string;
}

/** Format-string variables (matched case-insensitively) and the attribute each reads. */
const variables: Record<string, keyof SubjectAttributes> = {
  username: 'userName',
  userprincipalname: 'userPrincipalName',
  emailaddress: 'emailAddress',
  displayname: 'displayName',
  deviceid: 'deviceId',
  aad_device_id: 'deviceId',
  devicename: 'deviceName',
};

const variableNames = ['UserName', 'UserPrincipalName', 'EmailAddress', 'DisplayName', 'DeviceId', 'AAD_Device_ID', 'DeviceName'];

/** Attribute type names accepted in format strings (upper-cased) → OID. */
const attributeTypes: Record<string, string> = {
  CN: OID.commonName,
  E: OID.emailAddress,
  EMAIL: OID.emailAddress,
  EMAILADDRESS: OID.emailAddress,
  O: OID.organizationName,
  OU: OID.organizationalUnitName,
  L: OID.localityName,
  ST: OID.stateOrProvinceName,
  S: OID.stateOrProvinceName,
  C: OID.countryName,
  SERIALNUMBER: OID.serialNumber,
  DC: OID.domainComponent,
  UID: OID.userId,
  SN: OID.surname,
  G: OID.givenName,
  GN: OID.givenName,
  GIVENNAME: OID.givenName,
  T: OID.title,
  TITLE: OID.title,
};

/** An attribute value longer than this is refused (RFC 5280 Appendix A upper bounds are 64–128). */
const MAX_VALUE_LENGTH = 256;

type Piece = { readonly literal: string } | { readonly variable: keyof SubjectAttributes; readonly name: string };

/** One `TYPE=value` of a format string, value split into literals and variables. */
export interface FormatAttribute {
  readonly type: string;
  readonly pieces: readonly Piece[];
}

function formatError(message: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', message);
}

/** The format string a profile's subjectNameFormat stands for. */
export function subjectFormatString(format: SubjectNameFormat, custom?: string): string {
  switch (format) {
    case 'commonName':
      return 'CN={{UserName}}';
    case 'commonNameAsEmail':
      return 'CN={{EmailAddress}}';
    case 'commonNameIncludingEmail':
      return 'CN={{UserName}},E={{EmailAddress}}';
    case 'custom':
      if (custom === undefined || custom.trim() === '') throw formatError('subjectNameFormat "custom" needs a subjectNameFormatString');
      return custom;
    default:
      throw formatError(`unknown subjectNameFormat "${String(format)}"; expected one of ${SubjectNameFormats.join(', ')}`);
  }
}

/** Splits on unescaped commas and removes RFC 4514 backslash escapes. */
function splitRdns(format: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!;
    if (ch === '\\') {
      const next = format[i + 1];
      if (next === undefined) throw formatError('subject format ends with a lone backslash');
      current += next;
      i++;
    } else if (ch === ',') {
      parts.push(current);
      current = '';
    } else if (ch === '+') {
      throw formatError('multi-valued RDNs ("+") are not supported in subject formats; escape it as "\\+" for a literal plus');
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function parsePieces(value: string): Piece[] {
  const pieces: Piece[] = [];
  let rest = value;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      if (rest.includes('}}')) throw formatError(`subject format has "}}" without "{{" in "${value}"`);
      pieces.push({ literal: rest });
      break;
    }
    if (open > 0) pieces.push({ literal: rest.slice(0, open) });
    const close = rest.indexOf('}}', open);
    if (close < 0) throw formatError(`subject format has an unclosed "{{" in "${value}"`);
    const name = rest.slice(open + 2, close).trim();
    const variable = variables[name.toLowerCase()];
    if (!variable) throw formatError(`unknown subject variable {{${name}}}; known: ${variableNames.map((v) => `{{${v}}}`).join(', ')}`);
    pieces.push({ variable, name });
    rest = rest.slice(close + 2);
  }
  return pieces;
}

/** Parses and checks a format string (types known, variables known, not empty). */
export function parseSubjectFormat(format: string): FormatAttribute[] {
  if (format.length > 1024) throw formatError('subject format is too long');
  const out: FormatAttribute[] = [];
  for (const part of splitRdns(format)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw formatError(`subject format element "${part.trim()}" is not TYPE=value`);
    const typeName = part.slice(0, eq).trim();
    const type = /^\d+(\.\d+)+$/.test(typeName) ? typeName : attributeTypes[typeName.toUpperCase()];
    if (!type) throw formatError(`unknown attribute type "${typeName}" in subject format; use e.g. CN, E, O, OU, L, ST, C or a dotted OID`);
    const pieces = parsePieces(part.slice(eq + 1).trim());
    if (pieces.length === 0) throw formatError(`subject format element "${typeName}=" has no value`);
    out.push({ type, pieces });
  }
  return out;
}

export interface BuiltSubject {
  /** Name DER. */
  readonly der: Uint8Array;
  readonly name: Name;
  /** RFC 4514-style, as nameToString prints it. */
  readonly text: string;
}

/** Fills a format with a user's attributes and encodes the Name. */
export function buildSubject(format: string, attributes: SubjectAttributes): BuiltSubject {
  const parsed = parseSubjectFormat(format);
  const pairs: [string, string][] = parsed.map(({ type, pieces }) => {
    const value = pieces
      .map((p) => {
        if ('literal' in p) return p.literal;
        const v = attributes[p.variable]?.trim();
        if (!v) throw formatError(`the subject format needs {{${p.name}}}, but no ${p.variable} is known for this user or device`);
        return v;
      })
      .join('');
    if (value.length > MAX_VALUE_LENGTH) throw formatError(`subject attribute ${type} is longer than ${MAX_VALUE_LENGTH} characters`);
    if (type === OID.countryName && !/^[A-Z]{2}$/.test(value)) throw formatError(`country (C) must be two upper-case letters, got "${value}"`);
    if (type === OID.emailAddress && !isAsciiEmail(value)) throw formatError(`"${value}" is not an ASCII email address`);
    return [type, value];
  });
  // Format strings list the most specific RDN first (RFC 4514 §2.1); a Name is encoded most significant first.
  const der = encodeName(pairs.reverse());
  const name = decodeName(parse(der));
  return { der, name, text: nameToString(name) };
}

/** rfc822Name and emailAddress are IA5String: SmtpUTF8Mailbox (RFC 8398) is not issued. */
export function isAsciiEmail(s: string): boolean {
  return /^[\x21-\x7e]+@[\x21-\x7e]+$/.test(s) && s.indexOf('@') === s.lastIndexOf('@');
}

export interface BuiltSubjectAltNames {
  readonly emails: readonly string[];
  readonly upns: readonly string[];
}

/** The SAN values the profile asks for, from the user's attributes. */
export function buildSubjectAltNames(types: readonly SubjectAltNameType[], attributes: SubjectAttributes): BuiltSubjectAltNames {
  const emails: string[] = [];
  const upns: string[] = [];
  for (const t of new Set(types)) {
    if (t === 'emailAddress') {
      const e = attributes.emailAddress?.trim();
      if (!e) throw formatError('the profile puts the email address in the subject alternative name, but none is known for this user');
      if (!isAsciiEmail(e)) throw formatError(`"${e}" is not an ASCII email address (internationalised addresses are not supported)`);
      emails.push(e);
    } else if (t === 'userPrincipalName') {
      const u = attributes.userPrincipalName?.trim();
      if (!u) throw formatError('the profile puts the user principal name in the subject alternative name, but none is known for this user');
      upns.push(u);
    } else {
      throw formatError(`unknown subject alternative name type "${String(t)}"; expected one of ${SubjectAltNameTypes.join(', ')}`);
    }
  }
  return { emails, upns };
}
