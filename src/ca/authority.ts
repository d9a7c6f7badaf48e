/**
 * The certificate authority service: issues, renews and revokes end-entity
 * certificates under the issuing CA, records every issuance in the CaStore,
 * and publishes full CRLs. Setting the CA up (a new root and issuing CA, or
 * an imported issuing CA) is in setup.ts.
 *
 * The clock and randomness are injectable; the CA key is reached only
 * through the KeyStore (a `CertificateSigner`), never as a raw key.
 */
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { CaRecord, CaStore, CrlRecord, IssuedCertificateRecord, ListIssuedOptions } from '../store/ca.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { CrlReason } from '../x509/crl.ts';
import { nameToString } from '../x509/name.ts';
import { OID } from '../asn1/oids.ts';
import { type CertificateSigner, type RandomSource, buildCertificate, defaultRandom, randomSerial } from './certificate-builder.ts';
import { buildCrl } from './crl-builder.ts';
import { authorityKeyIdentifier, extension, keyIdentifier, subjectKeyIdentifier } from './extensions.ts';
import { type CaUrls, type CertificateNames, type KeySource, commonExtensions, endEntityExtensions, keyFamily, resolveNames, subjectKey } from './issuance.ts';
import { KeySpecs } from './key-spec.ts';
import type { KeyStore } from './keystore.ts';
import type { SubjectAttributes } from './subject-name.ts';
import { type CertificateProfile, addValidity, checkKeyAllowed, checkProfile } from './templates.ts';

export const ROOT_CA_ID = 'root';
export const ISSUING_CA_ID = 'issuing';

const DAY = 86_400_000;
/** notBefore is back-dated this much, for relying parties whose clocks run a little slow. */
export const CLOCK_SKEW_MS = 5 * 60_000;
export const DEFAULT_CRL_PERIOD_MS = 7 * DAY;

export interface CaOptions {
  readonly store: CaStore;
  readonly keyStore: KeyStore;
  readonly clock?: () => Date;
  readonly random?: RandomSource;
  readonly urls?: CaUrls;
  /** thisUpdate → nextUpdate of each CRL (default 7 days). */
  readonly crlPeriodMs?: number;
  /** A CRL is refreshed once less than this remains before its nextUpdate (default half the period). */
  readonly crlRefreshMarginMs?: number;
}

export interface IssueRequest extends KeySource {
  readonly profile: CertificateProfile;
  /** The user's (and device's) attributes, named per the profile… */
  readonly attributes?: SubjectAttributes;
  /** …or names already resolved (e.g. the ones a SCEP challenge allows). */
  readonly names?: CertificateNames;
  /** Who asked: a SCEP transaction's requester, a device id, "cli". */
  readonly requester?: string;
}

export interface RenewRequest extends KeySource {
  readonly requester?: string;
  /** Re-apply this profile (key policy, validity, usages); by default the old certificate's usages and lifetime are kept. */
  readonly profile?: CertificateProfile;
}

export interface IssuedCertificate {
  readonly der: Uint8Array;
  readonly certificate: Certificate;
  readonly record: IssuedCertificateRecord;
}

export type CrlReasonName = keyof typeof CrlReason;

export interface RevokeResult {
  readonly record: IssuedCertificateRecord;
  /** False when the certificate was already revoked (the first revocation stands). */
  readonly newlyRevoked: boolean;
  /** The CRL published after the revocation. */
  readonly crl: CrlRecord | undefined;
}

/** A CRLReason as a number; removeFromCRL (delta CRLs only) and the unused value 7 are refused. */
export function crlReasonCode(reason: CrlReasonName | number): number {
  const code = typeof reason === 'number' ? reason : CrlReason[reason];
  if (code === undefined || !Number.isInteger(code) || code < 0 || code > 10 || code === 7 || code === CrlReason.removeFromCRL) {
    throw new KeyfleetError('KF_USAGE', `unsupported revocation reason "${String(reason)}"; use one of ${Object.keys(CrlReason).filter((k) => k !== 'removeFromCRL').join(', ')}`);
  }
  return code;
}

export class CertificateAuthority {
  /** The issuing CA certificate. */
  readonly certificate: Certificate;
  /** Certificates above the issuing CA, nearest first (the root last). */
  readonly chain: readonly Certificate[];
  /** Signs with the issuing CA key (for OCSP responses signed by the CA itself). */
  readonly signer: CertificateSigner;
  readonly urls: CaUrls;
  readonly #store: CaStore;
  readonly #clock: () => Date;
  readonly #random: RandomSource;
  readonly #keyId: Uint8Array;
  readonly #crlPeriodMs: number;
  readonly #crlRefreshMarginMs: number;

  /** Use openCa / initCa / importCa (setup.ts). */
  constructor(options: CaOptions, record: CaRecord, signer: CertificateSigner) {
    this.certificate = decodeCertificate(record.certificateDer);
    this.chain = record.chainDer.map((d) => decodeCertificate(d));
    this.signer = signer;
    this.urls = options.urls ?? {};
    this.#store = options.store;
    this.#clock = options.clock ?? (() => new Date());
    this.#random = options.random ?? defaultRandom;
    this.#keyId = this.certificate.subjectKeyIdentifier ?? keyIdentifier(this.certificate.spki);
    this.#crlPeriodMs = options.crlPeriodMs ?? DEFAULT_CRL_PERIOD_MS;
    this.#crlRefreshMarginMs = options.crlRefreshMarginMs ?? this.#crlPeriodMs / 2;
    if (!(this.#crlPeriodMs > 60_000) || !(this.#crlRefreshMarginMs >= 0 && this.#crlRefreshMarginMs < this.#crlPeriodMs)) {
      throw new KeyfleetError('KF_USAGE', 'the CRL period must exceed a minute and the refresh margin must be shorter than the period');
    }
  }

  /** The root, when the chain ends in a self-signed certificate. */
  get root(): Certificate | undefined {
    const last = this.chain.at(-1);
    return last && Buffer.compare(last.subject.der, last.issuer.der) === 0 ? last : undefined;
  }

  /** Issues an end-entity certificate under `profile` and records it. */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const profile = checkProfile(request.profile);
    if ((request.attributes === undefined) === (request.names === undefined)) throw new KeyfleetError('KF_USAGE', 'give exactly one of subject attributes or resolved names');
    const names = request.names ?? resolveNames(profile, request.attributes!);
    const { spki, publicKey } = subjectKey(request);
    const extensions = endEntityExtensions({ profile, names, spki, publicKey, issuer: this.certificate, issuerKeyId: this.#keyId, urls: this.urls });
    const now = this.#now();
    return this.#signAndRecord({ subject: names.subject, spki, extensions, notBefore: new Date(now.getTime() - CLOCK_SKEW_MS), notAfter: addValidity(now, profile.validity) }, profile.name, request.requester);
  }

  /**
   * Issues a successor with the same subject and SAN (and, unless a profile
   * is given, the same usages and lifetime), for the same key or a new one.
   * The old certificate stays valid; revoke it as `superseded` if wanted.
   */
  async renew(serialHex: string, request: RenewRequest = {}): Promise<IssuedCertificate> {
    const record = await this.get(serialHex);
    if (record.status === 'revoked') throw new KeyfleetError('KF_CONFLICT', `certificate ${serialHex} is revoked and cannot be renewed`);
    const old = decodeCertificate(record.certificateDer);
    const newKey = request.publicKey !== undefined || request.csr !== undefined;
    const { spki, publicKey } = newKey ? subjectKey(request) : { spki: old.spki, publicKey: old.publicKey };
    const now = this.#now();
    const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    let extensions: Uint8Array[];
    let notAfter: Date;
    let profileName = record.profile;
    if (request.profile) {
      const profile = checkProfile(request.profile);
      const san = old.subjectAltName;
      const names: CertificateNames = { subject: old.subject.der, emails: san?.rfc822Names ?? [], upns: san?.upns ?? [] };
      extensions = endEntityExtensions({ profile, names, spki, publicKey, issuer: this.certificate, issuerKeyId: this.#keyId, urls: this.urls });
      notAfter = addValidity(now, profile.validity);
      profileName = profile.name;
    } else {
      if (newKey) {
        // The usages were chosen for the old key's family (keyEncipherment vs keyAgreement).
        checkKeyAllowed({ name: record.profile ?? 'renewal', keyTypes: KeySpecs }, publicKey);
        if (keyFamily(publicKey) !== keyFamily(old.publicKey)) {
          throw new KeyfleetError('KF_KEY_INVALID', 'a renewal without a profile must keep the key type (RSA or EC) of the certificate it renews');
        }
      }
      extensions = this.#carriedExtensions(old, spki);
      notAfter = new Date(now.getTime() + (old.notAfter.getTime() - old.notBefore.getTime()) - CLOCK_SKEW_MS);
    }
    return this.#signAndRecord({ subject: old.subject.der, spki, extensions, notBefore, notAfter }, profileName, request.requester ?? record.requester);
  }

  /** Revokes a certificate and publishes a new CRL. KF_NOT_FOUND for a serial this CA did not issue. */
  async revoke(serialHex: string, reason: CrlReasonName | number = 'unspecified'): Promise<RevokeResult> {
    const code = crlReasonCode(reason);
    const serial = normaliseSerial(serialHex);
    await this.get(serial);
    const newlyRevoked = await this.#store.revoke(ISSUING_CA_ID, serial, code === 0 ? undefined : code, this.#now());
    const crl = newlyRevoked ? await this.generateCrl() : undefined;
    return { record: await this.get(serial), newlyRevoked, crl };
  }

  /** The issuance record of a serial (lower-case hex contents octets). */
  async get(serialHex: string): Promise<IssuedCertificateRecord> {
    const serial = normaliseSerial(serialHex);
    const record = await this.#store.getIssued(ISSUING_CA_ID, serial);
    if (!record) throw new KeyfleetError('KF_NOT_FOUND', `no certificate with serial ${serial} was issued by this CA`);
    return record;
  }

  list(options: ListIssuedOptions = {}): Promise<IssuedCertificateRecord[]> {
    return this.#store.listIssued(ISSUING_CA_ID, options);
  }

  /**
   * Builds, signs and stores a full CRL of every revoked certificate, with
   * the next CRL number. The store allocates the number in a transaction
   * whose callback cannot wait for an (asynchronous) KeyStore signature, so
   * the CRL is signed for the number expected and the store's callback
   * refuses a different one; the loop then signs again for the number seen.
   */
  async generateCrl(): Promise<CrlRecord> {
    const revoked = await this.#store.listRevoked(ISSUING_CA_ID);
    const latest = await this.#store.getLatestCrl(ISSUING_CA_ID);
    let expected = (latest?.crlNumber ?? 0n) + 1n;
    for (let attempt = 0; ; attempt++) {
      const thisUpdate = this.#now();
      const nextUpdate = new Date(thisUpdate.getTime() + this.#crlPeriodMs);
      const der = await buildCrl({ issuer: this.certificate.subject.der, thisUpdate, nextUpdate, crlNumber: expected, authorityKeyId: this.#keyId, revoked }, this.signer);
      let seen: bigint | undefined;
      try {
        return await this.#store.putCrl(ISSUING_CA_ID, (crlNumber) => {
          if (crlNumber !== expected) {
            seen = crlNumber;
            throw new KeyfleetError('KF_CONFLICT', 'CRL number changed while the CRL was being signed');
          }
          return { thisUpdate, nextUpdate, der };
        });
      } catch (e) {
        if (seen === undefined || attempt >= 4 || !isKeyfleetError(e, 'KF_CONFLICT')) throw e;
        expected = seen;
      }
    }
  }

  latestCrl(): Promise<CrlRecord | undefined> {
    return this.#store.getLatestCrl(ISSUING_CA_ID);
  }

  /** True when there is no CRL yet or the latest one is within the refresh margin of its nextUpdate. */
  async crlNeedsRefresh(now: Date = this.#now()): Promise<boolean> {
    const latest = await this.latestCrl();
    return latest === undefined || now.getTime() >= latest.nextUpdate.getTime() - this.#crlRefreshMarginMs;
  }

  /** Regenerates the CRL when it is due (for a scheduler); returns the new CRL, or undefined when none was due. */
  async refreshCrlIfDue(): Promise<CrlRecord | undefined> {
    return (await this.crlNeedsRefresh()) ? this.generateCrl() : undefined;
  }

  #now(): Date {
    const now = this.#clock();
    if (now.getTime() >= this.certificate.notAfter.getTime()) throw new KeyfleetError('KF_CA_NOT_INITIALISED', 'the issuing CA certificate has expired; set up a new issuing CA');
    return now;
  }

  /** The old certificate's extensions with the key identifiers, CRL and AIA URLs made current. */
  #carriedExtensions(old: Certificate, spki: Uint8Array): Uint8Array[] {
    const regenerated = new Set<string>([OID.subjectKeyIdentifier, OID.authorityKeyIdentifier, OID.cRLDistributionPoints, OID.authorityInfoAccess]);
    const out: Uint8Array[] = [];
    for (const e of old.extensions) {
      if (!regenerated.has(e.extnID)) out.push(extension(e.extnID, e.extnValue, e.critical));
      if (e.extnID === OID.subjectKeyIdentifier) out.push(subjectKeyIdentifier(keyIdentifier(spki)), authorityKeyIdentifier(this.#keyId));
    }
    if (!old.subjectKeyIdentifier) out.push(subjectKeyIdentifier(keyIdentifier(spki)), authorityKeyIdentifier(this.#keyId));
    const responder = old.extensions.some((e) => e.extnID === '1.3.6.1.5.5.7.48.1.5');
    out.push(...commonExtensions(this.urls, responder));
    return out;
  }

  async #signAndRecord(
    fields: { readonly subject: Uint8Array; readonly spki: Uint8Array; readonly extensions: readonly Uint8Array[]; readonly notBefore: Date; readonly notAfter: Date },
    profile: string | undefined,
    requester: string | undefined,
  ): Promise<IssuedCertificate> {
    // A certificate never outlives its issuer (RFC 5280 §6.1 would reject it at the CA's expiry anyway).
    const notAfter = fields.notAfter.getTime() > this.certificate.notAfter.getTime() ? this.certificate.notAfter : fields.notAfter;
    for (let attempt = 0; ; attempt++) {
      const serialNumber = randomSerial(this.#random);
      const der = await buildCertificate({ ...fields, notAfter, serialNumber, issuer: this.certificate.subject.der }, this.signer);
      const certificate = decodeCertificate(der);
      const record: IssuedCertificateRecord = {
        caId: ISSUING_CA_ID,
        serialHex: certificate.serialHex,
        subject: nameToString(certificate.subject),
        emailAddresses: certificate.emailAddresses,
        profile,
        requester,
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
        issuedAt: this.#now(),
        certificateDer: der,
        status: 'good',
        revokedAt: undefined,
        revocationReason: undefined,
      };
      try {
        await this.#store.recordIssued(record);
        return { der, certificate, record };
      } catch (e) {
        // 159 random bits make a collision all but impossible; a retry with a fresh serial costs nothing.
        if (!isKeyfleetError(e, 'KF_CONFLICT') || attempt >= 2) throw e;
      }
    }
  }
}

/** Serials are stored as lower-case hex contents octets; accept upper case and colons as openssl prints them. */
export function normaliseSerial(serialHex: string): string {
  const s = serialHex.replace(/:/g, '').toLowerCase();
  if (!/^(?:[0-9a-f]{2}){1,21}$/.test(s)) throw new KeyfleetError('KF_USAGE', `"${serialHex.slice(0, 64)}" is not a serial number in hex`);
  return s;
}

