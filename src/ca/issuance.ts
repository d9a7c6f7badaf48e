/**
 * What goes into an end-entity certificate: names from a profile and a
 * user's attributes, the key from a public key or a CSR, and the extension
 * list of RFC 5280 §4.2 for the profile's template. Pure functions; the
 * CertificateAuthority signs and records.
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import { type CertificationRequest, loadCsr, verifyCsrSignature } from './csr.ts';
import * as ext from './extensions.ts';
import { describeKey } from './key-spec.ts';
import { buildSubject, buildSubjectAltNames, subjectFormatString, type SubjectAttributes } from './subject-name.ts';
import { type CertificateProfile, checkKeyAllowed, templates } from './templates.ts';

/** Subject and SAN values, resolved (from a profile, a challenge, or an earlier certificate). */
export interface CertificateNames {
  /** Name DER; an empty Name (30 00) makes the SAN critical (RFC 5280 §4.2.1.6). */
  readonly subject: Uint8Array;
  readonly emails: readonly string[];
  readonly upns: readonly string[];
}

/** The subject and SAN a profile gives a user: what SCEP compares a CSR against. */
export function resolveNames(profile: CertificateProfile, attributes: SubjectAttributes): CertificateNames & { readonly subjectText: string } {
  const subject = buildSubject(subjectFormatString(profile.subjectNameFormat, profile.subjectNameFormatString), attributes);
  const san = buildSubjectAltNames(profile.subjectAlternativeNameTypes, attributes);
  return { subject: subject.der, subjectText: subject.text, emails: san.emails, upns: san.upns };
}

/** Where the subject's public key comes from: exactly one of a KeyObject, a CSR (checked) or CSR bytes (PEM or DER). */
export interface KeySource {
  readonly publicKey?: KeyObject;
  readonly csr?: CertificationRequest | Uint8Array;
}

/** The SubjectPublicKeyInfo DER and key, after the CSR's proof of possession. */
export function subjectKey(source: KeySource): { readonly spki: Uint8Array; readonly publicKey: KeyObject } {
  if ((source.publicKey === undefined) === (source.csr === undefined)) throw new KeyfleetError('KF_USAGE', 'give exactly one of a public key or a CSR');
  if (source.publicKey) {
    const publicKey = source.publicKey.type === 'private' ? createPublicKey(source.publicKey) : source.publicKey;
    return { spki: publicKey.export({ format: 'der', type: 'spki' }), publicKey };
  }
  const csr = source.csr instanceof Uint8Array ? loadCsr(source.csr) : source.csr!;
  if (!(source.csr instanceof Uint8Array) && !verifyCsrSignature(csr)) {
    throw new KeyfleetError('KF_KEY_INVALID', 'the certification request signature does not verify with its own public key');
  }
  return { spki: csr.spki, publicKey: csr.publicKey };
}

/** CA-wide URLs written into every end-entity certificate. */
export interface CaUrls {
  /** CRL distribution point URIs. */
  readonly crl?: readonly string[];
  /** OCSP responder URIs (authorityInfoAccess). */
  readonly ocsp?: readonly string[];
  /** Where the issuing CA certificate can be fetched (authorityInfoAccess caIssuers). */
  readonly caIssuers?: readonly string[];
}

/** Extensions of an end-entity certificate under `profile`, in the order written. */
export function endEntityExtensions(args: {
  readonly profile: CertificateProfile;
  readonly names: CertificateNames;
  readonly spki: Uint8Array;
  readonly publicKey: KeyObject;
  readonly issuer: Certificate;
  readonly issuerKeyId: Uint8Array;
  readonly urls: CaUrls;
}): Uint8Array[] {
  const { profile, names, urls } = args;
  const spec = checkKeyAllowed(profile, args.publicKey);
  const template = templates[profile.template];
  const out: Uint8Array[] = [ext.basicConstraints(false), ext.keyUsage(template.keyUsage(spec.startsWith('rsa') ? 'rsa' : 'ec'))];
  if (template.extKeyUsage.length > 0) out.push(ext.extKeyUsage(template.extKeyUsage));
  out.push(ext.subjectKeyIdentifier(ext.keyIdentifier(args.spki)), ext.authorityKeyIdentifier(args.issuerKeyId));
  const san = ext.subjectAltName(names, isEmptyName(names.subject));
  if (san) out.push(san);
  else if (isEmptyName(names.subject)) throw new KeyfleetError('KF_USAGE', 'a certificate needs a subject name or a subject alternative name');
  out.push(...commonExtensions(urls, template.ocspNoCheck));
  if (profile.certificatePolicies && profile.certificatePolicies.length > 0) out.push(ext.certificatePolicies(profile.certificatePolicies));
  if (template.ocspNoCheck) out.push(ext.ocspNoCheck());
  return out;
}

/**
 * CRL distribution point and AIA. A delegated OCSP responder (nocheck) gets
 * neither: clients must not chase its own revocation status.
 */
export function commonExtensions(urls: CaUrls, ocspResponder = false): Uint8Array[] {
  if (ocspResponder) return [];
  const out: Uint8Array[] = [];
  if (urls.crl && urls.crl.length > 0) out.push(ext.crlDistributionPoints(urls.crl));
  const aia = ext.authorityInfoAccess({ ...(urls.ocsp ? { ocsp: urls.ocsp } : {}), ...(urls.caIssuers ? { caIssuers: urls.caIssuers } : {}) });
  if (aia) out.push(aia);
  return out;
}

export function isEmptyName(nameDer: Uint8Array): boolean {
  return nameDer.length === 2 && nameDer[0] === 0x30 && nameDer[1] === 0;
}

/** RSA or EC, for a renewal that keeps the old certificate's key usages. */
export function keyFamily(key: KeyObject): 'rsa' | 'ec' | undefined {
  const { spec } = describeKey(key);
  return spec === undefined ? undefined : spec.startsWith('rsa') ? 'rsa' : 'ec';
}
