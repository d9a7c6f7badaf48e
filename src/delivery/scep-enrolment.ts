/**
 * What a device needs to enrol for one SCEP profile (docs/delivery.md
 * "Check-in"): the SCEP URL of the profile, the subject and SAN made from
 * the user's attributes, and a one-time challenge bound to this device,
 * user, profile, subject and SAN.
 *
 * The challenge is derived, not stored: HMAC-SHA-256 under the service's
 * challenge key over (tenant, certificate state id, when its challenge was
 * issued). Every full check-in until the device uses it can therefore hand
 * out the same password without the service keeping it; only its SHA-256
 * sits in the SCEP store (src/scep/challenge.ts), registered once, one use,
 * 60 minutes.
 *
 * The SCEP store knows profiles by name; each iosScepCertificateProfile is
 * mirrored there under a name made of its id and a digest of its CA
 * template, so a changed profile gets a new name and enrolments already
 * under way finish under the old one.
 */
import { createHash, createHmac } from 'node:crypto';
import { ISSUING_CA_ID, type CertificateAuthority } from '../ca/authority.ts';
import { resolveNames } from '../ca/issuance.ts';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { scepProfileToCertificateProfile, type ScepProfile } from '../policy/index.ts';
import type { TenantStore } from '../store/store.ts';
import type { UserRecord } from '../store/directory.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';

export const CHALLENGE_TTL_MS = 60 * 60_000;

export interface ScepRequestItem {
  readonly url: string;
  readonly challenge: string;
  readonly expiresAt: string;
  readonly subject: string;
  readonly sanEmail?: string;
  readonly sanUpn?: string;
  readonly keySize: number;
  readonly keyUsage: readonly string[];
  readonly caFingerprint: string;
}

/** What every SCEP store name of the profile resource starts with, whatever its template. */
export function scepStorePrefix(resourceId: string): string {
  return `p-${resourceId.replace(/[^A-Za-z0-9-]/g, '').slice(0, 40)}-`;
}

/** The SCEP store's name for a profile resource (≤ 64 characters, URL-safe). */
export async function ensureScepStoreProfile(tx: TenantStore, resourceId: string, profile: ScepProfile, now: Date): Promise<string> {
  const template = scepProfileToCertificateProfile(profile);
  const digest = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 12);
  const name = `${scepStorePrefix(resourceId)}${digest}`;
  if ((await tx.scep.getProfile(name)) === undefined) {
    // Under a savepoint: on PostgreSQL a refused insert would otherwise abort the caller's whole transaction.
    await tx.attempt((sp) => sp.scep.putProfile({ name, caId: ISSUING_CA_ID, template: { ...template, name }, createdAt: now })).catch(async (e: unknown) => {
      // Another check-in made it a moment ago: the same name is the same template.
      if (!isKeyfleetError(e, 'KF_CONFLICT') || (await tx.scep.getProfile(name)) === undefined) throw e;
    });
  }
  return name;
}

export function deriveChallenge(secret: Uint8Array, tenantId: string, stateId: string, issuedAt: Date): string {
  return createHmac('sha256', secret).update(`keyfleet-scep-challenge/1\n${tenantId}\n${stateId}\n${issuedAt.getTime()}`).digest('base64url');
}

/** The names the CSR must carry, from the profile and the user and device. */
export function expectedNames(profile: ScepProfile, user: UserRecord, device: ManagedDeviceRecord): { subject: string; sanEmail: string | undefined; sanUpn: string | undefined } {
  const names = resolveNames(scepProfileToCertificateProfile(profile), {
    userName: user.userPrincipalName.split('@')[0]!,
    userPrincipalName: user.userPrincipalName,
    ...(user.mail === undefined ? {} : { emailAddress: user.mail }),
    displayName: user.displayName,
    deviceId: device.id,
    deviceName: device.deviceName,
  });
  if (names.emails.length > 1 || names.upns.length > 1) throw new KeyfleetError('KF_USAGE', 'a SCEP profile for S/MIME names at most one email address and one UPN');
  return { subject: names.subjectText, sanEmail: names.emails[0], sanUpn: names.upns[0] };
}

/** Registers the derived challenge's digest with the SCEP store (once per issue). */
export async function registerChallenge(
  tx: TenantStore,
  password: string,
  binding: { readonly profile: string; readonly deviceId: string; readonly subject: string; readonly sanEmail: string | undefined; readonly sanUpn: string | undefined },
  issuedAt: Date,
): Promise<Date> {
  const expiresAt = new Date(issuedAt.getTime() + CHALLENGE_TTL_MS);
  await tx.scep.putChallenge({
    hash: createHash('sha256').update(password, 'utf8').digest('hex'),
    profile: binding.profile,
    deviceId: binding.deviceId,
    subject: binding.subject,
    sanEmail: binding.sanEmail,
    sanUpn: binding.sanUpn,
    createdAt: issuedAt,
    expiresAt,
  });
  return expiresAt;
}

/**
 * The device's SCEP URL: the profile's server (scepServerUrls[0], e.g. https://host/scep) with the mirrored
 * profile's name appended. A URL that already names a profile (https://host/scep/default, as `ca init`
 * prints) has that name replaced: the device enrols under the profile the admin assigned, not another.
 */
export function scepUrl(profile: ScepProfile, storeName: string): string {
  const server = profile.scepServerUrls[0]!.replace(/\/+$/, '').replace(/(\/scep)\/[^/]+$/, '$1');
  return `${server}/${storeName}`;
}

export function caFingerprint(ca: CertificateAuthority): string {
  return ca.certificate.fingerprint256.toUpperCase();
}

/** When `renewalThresholdPercentage` of the certificate's lifetime has passed (Intune's renewal rule). */
export function renewalTime(notBefore: Date, notAfter: Date, thresholdPercent: number): Date {
  const life = Math.max(0, notAfter.getTime() - notBefore.getTime());
  return new Date(notBefore.getTime() + Math.ceil((life * thresholdPercent) / 100));
}

export function renewalDue(notBefore: Date, notAfter: Date, thresholdPercent: number, now: Date): boolean {
  return notAfter > notBefore && now >= renewalTime(notBefore, notAfter, thresholdPercent);
}

/** SCEP states in which a device is waiting to enrol with the challenge it was handed. */
export const AWAITING_ENROLMENT: ReadonlySet<string> = new Set(['challengeIssued', 'renewalRequested']);

/**
 * Checked when a challenge of a mirrored profile is presented (src/http/pki.ts): the device it is bound to
 * must still be managed and still be waiting to enrol for that profile. Retire, wipe, unassignment and
 * the device's own removal report withdraw challenges too; this holds even for a device that never
 * checked in again after losing the profile.
 */
export async function deviceMayEnrol(tx: Pick<TenantStore, 'devices'>, deviceId: string, storeProfile: string): Promise<boolean> {
  const device = await tx.devices.getDevice(deviceId);
  if (device === undefined || device.managementState !== 'managed') return false;
  const rows = (await tx.devices.listCertificateStates({ deviceId }, { limit: 1000 })).items;
  return rows.some((r) => r.source === 'scep' && AWAITING_ENROLMENT.has(r.state) && storeProfile.startsWith(scepStorePrefix(r.profileId)));
}

/** Mirrored profiles' names: only their challenges are bound to managed devices. */
export function isMirroredProfile(storeProfile: string): boolean {
  return /^p-[A-Za-z0-9-]+-[0-9a-f]{12}$/.test(storeProfile);
}

/**
 * Revokes (cessationOfOperation), in `tx`, every certificate still good that was enrolled on one of the
 * device's challenges — of the SCEP profiles whose store name starts with `profilePrefix`, when given —
 * whoever presented the challenge: the CA records the challenge's device as requester. A certificate
 * another device enrolled with a leaked challenge was never reported by either, and goes with its owner.
 * Returns the serials revoked.
 */
export async function revokeEnrolledOnChallenges(tx: Pick<TenantStore, 'ca'>, deviceId: string, profilePrefix: string | undefined, at: Date): Promise<string[]> {
  const revoked: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await tx.ca.listIssued(ISSUING_CA_ID, { requester: deviceId, status: 'good', limit: 1000, ...(after === undefined ? {} : { afterSerialHex: after }) });
    for (const issued of page) {
      if (profilePrefix !== undefined && !(issued.profile ?? '').startsWith(profilePrefix)) continue;
      if (await tx.ca.revoke(ISSUING_CA_ID, issued.serialHex, CESSATION_OF_OPERATION, at)) revoked.push(issued.serialHex);
    }
    if (page.length < 1000) return revoked;
    after = page.at(-1)!.serialHex;
  }
}

/** RFC 5280 §5.3.1 CRLReason cessationOfOperation: the device no longer needs the certificate. */
export const CESSATION_OF_OPERATION = 5;
