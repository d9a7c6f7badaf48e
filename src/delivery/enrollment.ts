/**
 * Device enrolment (docs/delivery.md "Device identity"): an administrator
 * makes a one-time enrollment token for a user; the device redeems it with a
 * CSR over a P-256 key it made itself and receives its identity
 * certificate (CN = device id, clientAuth) from the tenant's CA. Every
 * later device request is signed with that key.
 *
 * Order of work, so a refusal leaves nothing behind: the token is checked
 * first (unknown, used, expired → KF_ENROLLMENT_REFUSED, nothing issued);
 * the certificate is issued; then one transaction marks the token used and
 * stores the device with its audit entry. A token redeemed twice at the
 * same moment issues two certificates but enrols one device: the loser's
 * certificate is revoked at once and it is refused.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { CertificateAuthority } from '../ca/authority.ts';
import { decodeCsr, verifyCsrSignature } from '../ca/csr.ts';
import { defaultProfile } from '../ca/templates.ts';
import { encodeName } from '../x509/name.ts';
import { recorded, type Actor } from '../directory/audit.ts';
import { KeyfleetError } from '../errors.ts';
import type { EnrollRequest, EnrollResponse } from '../protocol/device-api.ts';
import type { EnrollmentTokenRecord } from '../store/delivery.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';
import type { Store, TenantStore } from '../store/store.ts';
import { deviceView } from './views.ts';

export const ENROLLMENT_TOKEN_PREFIX = 'kfe_';
const TOKEN_SHAPE = /^kfe_[A-Za-z0-9_-]{43}$/;
export const DEFAULT_ENROLLMENT_TOKEN_HOURS = 24;
const MAX_ENROLLMENT_TOKEN_HOURS = 24 * 30;
const IDENTITY_PROFILE = defaultProfile('deviceIdentity', { name: 'device-identity', keyTypes: ['p-256'] });

export interface CreatedEnrollmentToken {
  readonly token: EnrollmentTokenRecord;
  /** Shown once; only its SHA-256 is stored. */
  readonly secret: string;
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** An enrollment token for one user's next device (an admin action, audited without the secret). */
export function createEnrollmentToken(tenant: TenantStore, actor: Actor, userId: string, validityHours: number, now: Date): Promise<CreatedEnrollmentToken> {
  if (!Number.isInteger(validityHours) || validityHours < 1 || validityHours > MAX_ENROLLMENT_TOKEN_HOURS) {
    throw new KeyfleetError('KF_USAGE', `an enrollment token is valid for 1–${MAX_ENROLLMENT_TOKEN_HOURS} hours`);
  }
  const secret = ENROLLMENT_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const token: EnrollmentTokenRecord = {
    id: randomUUID(),
    userId,
    secretHash: hash(secret),
    createdAt: now,
    expiresAt: new Date(now.getTime() + validityHours * 3_600_000),
    usedAt: undefined,
    deviceId: undefined,
  };
  return recorded(tenant, actor, now, async (tx) => {
    const user = await tx.directory.getUser(userId);
    if (user === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${userId}"`);
    if (!user.accountEnabled) throw new KeyfleetError('KF_CONFLICT', `user "${user.userPrincipalName}" is disabled and cannot enrol a device`);
    await tx.delivery.putEnrollmentToken(token);
    const view = { id: token.id, userId, expiresDateTime: token.expiresAt.toISOString() };
    return { result: { token, secret }, action: 'enrollmentToken.create', resourceType: 'enrollmentToken', resourceId: token.id, before: null, after: view };
  });
}

/** The device's facts, checked: bounded strings, a known platform, a loopback portal URL. */
function checkFacts(r: EnrollRequest): void {
  const text = (v: unknown, name: string, max: number, optional = false) => {
    if (v === undefined && optional) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > max || /[\u0000-\u001f]/.test(v)) throw new KeyfleetError('KF_USAGE', `enrolment: ${name} must be 1–${max} printable characters`);
  };
  text(r.deviceName, 'deviceName', 256);
  text(r.osVersion, 'osVersion', 64);
  text(r.model, 'model', 128);
  text(r.serialNumber, 'serialNumber', 128, true);
  if (r.operatingSystem !== 'iOS' && r.operatingSystem !== 'iPadOS') throw new KeyfleetError('KF_USAGE', 'enrolment: operatingSystem must be iOS or iPadOS');
  if (r.portalUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(r.portalUrl);
    } catch {
      url = undefined;
    }
    if (url === undefined || url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || r.portalUrl.length > 256) {
      throw new KeyfleetError('KF_USAGE', 'enrolment: portalUrl must be an http URL on the device itself (127.0.0.1, localhost or [::1])');
    }
  }
}

export interface EnrollmentOptions {
  readonly store: Store;
  /** The tenant's CA, or undefined when it has none. */
  readonly authority: (tenantId: string) => Promise<CertificateAuthority | undefined>;
  /** Called with the new device, e.g. to compute its first desired state. */
  readonly enrolled?: (tenant: TenantStore, device: ManagedDeviceRecord) => Promise<void>;
  readonly clock?: () => Date;
}

export async function enrollDevice(options: EnrollmentOptions, request: EnrollRequest): Promise<EnrollResponse> {
  const now = new Date(Math.floor((options.clock ?? (() => new Date()))().getTime()));
  const refused = (why: string) => new KeyfleetError('KF_ENROLLMENT_REFUSED', `enrollment token refused: ${why}`);
  if (typeof request.enrollmentToken !== 'string' || !TOKEN_SHAPE.test(request.enrollmentToken)) throw refused('not an enrollment token');
  checkFacts(request);
  const secretHash = hash(request.enrollmentToken);
  const found = await options.store.deliveryLookup.findEnrollmentToken(secretHash);
  if (found === undefined) throw refused('unknown');
  if (found.token.usedAt !== undefined) throw refused('already used');
  if (found.token.expiresAt <= now) throw refused('expired');

  if (typeof request.csr !== 'string' || request.csr.length > 8192) throw new KeyfleetError('KF_USAGE', 'enrolment: csr must be a base64 PKCS#10 request');
  const csr = decodeCsr(Buffer.from(request.csr, 'base64'));
  if (!verifyCsrSignature(csr)) throw new KeyfleetError('KF_KEY_INVALID', 'enrolment: the CSR is not signed by the key it carries');
  const details = csr.publicKey.asymmetricKeyDetails;
  if (csr.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') throw new KeyfleetError('KF_KEY_INVALID', 'enrolment: the device identity key must be ECDSA P-256');

  const tenant = options.store.forTenant(found.tenantId);
  const ca = await options.authority(found.tenantId);
  if (ca === undefined) throw new KeyfleetError('KF_CA_NOT_INITIALISED', 'this tenant has no certificate authority to issue device identities');
  const user = await tenant.directory.getUser(found.token.userId);
  if (user === undefined || !user.accountEnabled) throw refused('its user no longer exists or is disabled');

  const deviceId = randomUUID();
  const issued = await ca.issue({
    publicKey: csr.publicKey,
    profile: IDENTITY_PROFILE,
    names: { subject: encodeName([['CN', deviceId]]), emails: [], upns: [] },
    requester: `device ${deviceId}`,
  });
  const device: ManagedDeviceRecord = {
    id: deviceId,
    userId: user.id,
    deviceName: request.deviceName,
    operatingSystem: request.operatingSystem,
    osVersion: request.osVersion,
    model: request.model,
    serialNumber: request.serialNumber,
    portalUrl: request.portalUrl,
    managementState: 'managed',
    enrolledAt: now,
    lastSyncAt: undefined,
    identityThumbprint: issued.certificate.fingerprint256,
    identityCertificate: issued.der,
    desiredStateHash: undefined, recheckAt: undefined,
    version: 0,
    createdAt: now,
    updatedAt: now,
  };
  const actor: Actor = { id: `device:${deviceId}`, name: `enrolment of ${request.deviceName}` };
  try {
    await recorded(tenant, actor, now, async (tx) => {
      const use = await tx.delivery.useEnrollmentToken(secretHash, deviceId, now);
      if (use.outcome !== 'ok') throw refused(use.outcome === 'used' ? 'already used' : use.outcome);
      await tx.devices.putDevice(device);
      return { result: undefined, action: 'managedDevice.enroll', resourceType: 'managedDevice', resourceId: deviceId, before: null, after: { ...deviceView(device), enrollmentTokenId: use.token.id } };
    });
  } catch (e) {
    await ca.revoke(issued.record.serialHex, 'cessationOfOperation').catch(() => undefined);
    throw e;
  }
  await options.enrolled?.(tenant, device);
  return {
    deviceId,
    userId: user.id,
    certificate: Buffer.from(issued.der).toString('base64'),
    caCertificates: [ca.certificate, ...ca.chain].map((c) => Buffer.from(c.der).toString('base64')),
  };
}
