/**
 * Reconciling one device (docs/delivery.md "Check-in"): from its evaluation
 * (what it should have) and its certificate states (what it has, or is
 * getting), the DesiredState a full check-in returns, with the state
 * changes that implies:
 *
 * - a SCEP profile with no live certificate gets one requested and a
 *   challenge issued; an installed one past renewalThresholdPercentage gets
 *   a renewal; an expired, unused challenge is issued afresh;
 * - each of the user's imported PFX certificates the profile delivers gets a
 *   state (enrollmentNotNeeded) and a delivery request for the connectors;
 * - what the device holds but should not (unassigned, or the device is
 *   being retired or wiped) is listed for removal: SCEP certificates are
 *   revoked now (cessationOfOperation), imported ones only removed; what
 *   never reached the device is simply deleted.
 *
 * Everything runs in the caller's transaction; `changed` says whether the
 * device's own rows moved, so the caller bumps its version (the ETag).
 */
import { randomUUID } from 'node:crypto';
import { ISSUING_CA_ID, type CertificateAuthority } from '../ca/authority.ts';
import { KeyfleetError } from '../errors.ts';
import { settingsToPlist, type CertificateProfileResource, type ScepProfile } from '../policy/index.ts';
import { INLINE_PAYLOAD_BUDGET, type DesiredState, type ImportedItem, type RemoveItem, type ScepItem, type TrustedRootItem } from '../protocol/device-api.ts';
import type { DeviceCertificateRecord, ManagedDeviceRecord } from '../store/devices.ts';
import type { ResourceCollection, ResourceRecord } from '../store/resources.ts';
import type { TenantStore } from '../store/store.ts';
import { decodeCertificate } from '../x509/certificate.ts';
import type { DeviceEvaluation } from './evaluator.ts';
import { AWAITING_ENROLMENT, CESSATION_OF_OPERATION, CHALLENGE_TTL_MS, caFingerprint, deriveChallenge, ensureScepStoreProfile, expectedNames, registerChallenge, renewalDue, renewalTime, revokeEnrolledOnChallenges, scepStorePrefix, scepUrl } from './scep-enrolment.ts';

/** States in which a certificate is on the device (or may be): removal must go through the device. */
const ON_DEVICE = new Set(['installed', 'renewVerified', 'renewalRequested', 'installFailed', 'enrollmentSucceeded', 'responsePending', 'responseProcessingFailed', 'deleteFailed']);
/** States after which a row is history. */
const GONE = new Set(['deleted', 'removedFromCollection']);

export interface ReconcileContext {
  readonly tx: TenantStore;
  readonly tenantId: string;
  readonly device: ManagedDeviceRecord;
  readonly evaluation: DeviceEvaluation;
  readonly ca: CertificateAuthority | undefined;
  readonly challengeSecret: Uint8Array;
  readonly now: Date;
  /**
   * Policies, certificate profiles and apps as the evaluation saw them (TenantEvaluator.resource); one it
   * does not hold is read from the store.
   */
  readonly resource?: (collection: ResourceCollection, id: string) => ResourceRecord | undefined;
}

export interface Reconciled {
  readonly state: Omit<DesiredState, 'version'>;
  /** The device's rows changed: bump its version so its ETag moves. */
  readonly changed: boolean;
  /** Delivery requests newly queued: wake the connectors. */
  readonly queued: number;
  /** The earliest renewal or challenge expiry: the device must be reconciled again then, changed or not. */
  readonly recheckAt: Date | undefined;
}

export async function reconcileDevice(c: ReconcileContext): Promise<Reconciled> {
  const { tx, device, evaluation, now } = c;
  const resourceOf = async (collection: ResourceCollection, id: string) => c.resource?.(collection, id) ?? (await tx.resources.getResource(collection, id));
  const retiring = device.managementState !== 'managed';
  let changed = false;
  let queued = 0;
  let recheckAt: Date | undefined;
  const dueAt = (d: Date) => {
    if (recheckAt === undefined || d < recheckAt) recheckAt = d;
  };
  const rows = (await tx.devices.listCertificateStates({ deviceId: device.id }, { limit: 1000 })).items.filter((r) => !GONE.has(r.state));
  const keep = new Set<string>();
  const put = async (row: DeviceCertificateRecord) => {
    await tx.devices.putCertificateState(row);
    changed = true;
    return row;
  };

  let inlineBudget = INLINE_PAYLOAD_BUDGET;
  const trustedRoots: TrustedRootItem[] = [];
  const scep: ScepItem[] = [];
  const imported: ImportedItem[] = [];
  const user = await tx.directory.getUser(device.userId);

  for (const wanted of retiring ? [] : evaluation.desired.certificates) {
    const resource = await resourceOf('certificateProfile', wanted.profileId);
    if (resource === undefined) continue;
    const body = resource.body as unknown as CertificateProfileResource;
    if (wanted.kind === 'trustedRoot' && body.kind === 'iosTrustedRootCertificate') {
      const der = Buffer.from(body.trustedRootCertificate, 'base64');
      trustedRoots.push({ profileId: wanted.profileId, certificate: body.trustedRootCertificate, thumbprint: decodeCertificate(der).thumbprint });
    } else if (wanted.kind === 'scep' && body.kind === 'iosScepCertificateProfile' && user !== undefined && c.ca !== undefined) {
      // A revoked certificate is not renewed in place: it leaves the device, and a new one is requested.
      let row = rows.find((r) => r.source === 'scep' && r.profileId === wanted.profileId && r.state !== 'revoked');
      if (row === undefined) row = await put(newRow(device.id, wanted.profileId, 'scep', undefined, 'requested', now));
      keep.add(row.id);
      scep.push(await scepItem(c, row, body, user, put, dueAt));
    } else if (wanted.kind === 'pkcsImported') {
      for (const pfx of wanted.pfx) {
        let row = rows.find((r) => r.source === 'pkcsImported' && r.pfxId === pfx.id);
        if (row === undefined) row = await put({ ...newRow(device.id, wanted.profileId, 'pkcsImported', pfx.id, 'enrollmentNotNeeded', now), thumbprint: pfx.thumbprint });
        keep.add(row.id);
        const request = await tx.delivery.ensureDeliveryRequest({
          id: randomUUID(), deviceId: device.id, pfxId: pfx.id, status: 'pending', claimHash: undefined, connectorId: undefined, leaseUntil: undefined,
          attempts: 0, payload: undefined, errorCode: undefined, errorDetail: undefined, createdAt: now, updatedAt: now,
        });
        if (request.createdAt.getTime() === now.getTime() && request.status === 'pending' && request.attempts === 0) queued++;
        // A ready payload the device has yet to install travels with the answer, saving it a request per PFX.
        let payload: string | undefined;
        if (request.status === 'ready' && request.payload !== undefined && row.state !== 'installed') {
          const size = Math.ceil(request.payload.length / 3) * 4;
          if (size <= inlineBudget) {
            payload = Buffer.from(request.payload).toString('base64');
            inlineBudget -= size;
          }
        }
        imported.push({
          id: row.id, profileId: wanted.profileId, pfxId: pfx.id, intendedPurpose: pfx.intendedPurpose, thumbprint: pfx.thumbprint, state: row.state,
          ...(request.status === 'ready' ? { deliveryId: request.id } : {}),
          ...(payload === undefined ? {} : { payload }),
        });
      }
    }
  }

  // What the device has or was getting but should not.
  const remove: RemoveItem[] = [];
  const reason: RemoveItem['reason'] = device.managementState === 'wipePending' ? 'wiped' : retiring ? 'retired' : 'unassigned';
  for (const row of rows) {
    if (keep.has(row.id)) continue;
    if (row.source === 'scep' && row.serialNumber !== undefined && row.state !== 'revoked' && c.ca !== undefined) {
      await tx.ca.revoke(ISSUING_CA_ID, row.serialNumber, CESSATION_OF_OPERATION, now);
      if (ON_DEVICE.has(row.state) || row.state === 'issued') await put({ ...row, state: 'revoked', stateChangedAt: now });
    }
    if (row.source === 'pkcsImported' && row.pfxId !== undefined) await tx.delivery.cancelDeliveryRequests(device.id, [row.pfxId], now);
    // The challenge it was handed for this profile must not enrol anything now, and what another device
    // enrolled on one of them goes too.
    if (row.source === 'scep' && AWAITING_ENROLMENT.has(row.state)) await tx.scep.withdrawChallenges(device.id, scepStorePrefix(row.profileId), now);
    // Once, as the row leaves: a row already revoked only waits for the device to report its removal.
    if (row.source === 'scep' && row.state !== 'revoked' && c.ca !== undefined) await revokeEnrolledOnChallenges(tx, device.id, scepStorePrefix(row.profileId), now);
    // An imported certificate still at enrollmentNotNeeded never reached the device: nothing to remove there.
    const onDevice = ON_DEVICE.has(row.state) || row.state === 'revoked';
    if (onDevice && row.thumbprint !== undefined) remove.push({ id: row.id, kind: row.source === 'scep' ? 'scep' : 'imported', thumbprint: row.thumbprint, reason });
    else if (!onDevice) await put({ ...row, state: 'deleted', stateChangedAt: now });
  }

  const appConfigurations = [];
  for (const a of retiring ? [] : evaluation.desired.appConfigurations) {
    const app = await resourceOf('app', a.appId);
    const bundleId = typeof app?.body['bundleId'] === 'string' ? app.body['bundleId'] : '';
    const policyIds = evaluation.state.appConfigurations.find((x) => x.appId === a.appId)?.policyIds ?? [];
    appConfigurations.push({ appId: a.appId, bundleId, policyIds, settings: a.settings, plist: settingsToPlist(a.settings) });
  }

  const policies = [];
  for (const p of retiring ? [] : evaluation.policies) {
    const resource = await resourceOf('policy', p.id);
    policies.push({ id: p.id, displayName: resource?.displayName ?? p.id, notApplicable: p.status === 'notApplicable' });
    const reported = (await tx.devices.listPolicyStates({ deviceId: device.id, policyId: p.id }, { limit: 1 })).items[0];
    if (reported === undefined) {
      const status = p.status === 'notApplicable' ? 'notApplicable' : 'unknown';
      await tx.devices.putPolicyState({ deviceId: device.id, policyId: p.id, status, detail: p.status === 'notApplicable' ? 'the user has no Exchange Online mailbox' : undefined, reportedAt: now });
    }
  }

  return {
    state: { deviceId: device.id, managementState: device.managementState, trustedRoots, appConfigurations, scep, imported, remove, policies },
    changed,
    queued,
    recheckAt,
  };
}

function newRow(deviceId: string, profileId: string, source: 'scep' | 'pkcsImported', pfxId: string | undefined, state: string, now: Date): DeviceCertificateRecord {
  return {
    id: randomUUID(), deviceId, profileId, source, pfxId, state, thumbprint: undefined, serialNumber: undefined, issuer: undefined, subject: undefined,
    expiresAt: undefined, errorCode: undefined, stateChangedAt: now, createdAt: now,
  };
}

/** The SCEP item for one row, moving it to challengeIssued (with a fresh challenge) when a certificate is needed. */
async function scepItem(
  c: ReconcileContext,
  row: DeviceCertificateRecord,
  profile: ScepProfile,
  user: NonNullable<Awaited<ReturnType<TenantStore['directory']['getUser']>>>,
  put: (row: DeviceCertificateRecord) => Promise<DeviceCertificateRecord>,
  dueAt: (when: Date) => void,
): Promise<ScepItem> {
  const { tx, now, device } = c;
  const ca = c.ca!;
  let current = row;
  let needs = false;
  if (current.state === 'requested' || current.state.endsWith('Failed')) {
    needs = true;
  } else if ((current.state === 'installed' || current.state === 'renewVerified') && current.serialNumber !== undefined) {
    const issued = await tx.ca.getIssued(ISSUING_CA_ID, current.serialNumber);
    if (issued === undefined || issued.status === 'revoked' || renewalDue(issued.notBefore, issued.notAfter, profile.renewalThresholdPercentage, now)) {
      current = await put({ ...current, state: 'renewalRequested', stateChangedAt: now });
      needs = true;
    } else {
      dueAt(renewalTime(issued.notBefore, issued.notAfter, profile.renewalThresholdPercentage));
    }
  } else if (AWAITING_ENROLMENT.has(current.state)) {
    needs = true;
  }
  const base = {
    id: current.id, profileId: current.profileId, purpose: 'smimeSigning' as const,
    ...(current.thumbprint === undefined ? {} : { thumbprint: current.thumbprint }),
    ...(current.serialNumber === undefined ? {} : { serialNumber: current.serialNumber }),
  };
  if (!needs) return { ...base, state: current.state };

  const storeName = await ensureScepStoreProfile(tx, current.profileId, profile, now);
  const names = expectedNames(profile, user, device);
  // A challenge lives 60 minutes from when it was issued; after that, or for a new request, issue another.
  const fresh = current.state === 'challengeIssued' && now.getTime() - current.stateChangedAt.getTime() < CHALLENGE_TTL_MS;
  if (!fresh) {
    const issuedAt = now;
    // renewalRequested → challengeIssued and requested → challengeIssued are lifecycle steps; a stale
    // challengeIssued is re-issued in place (same state, new time), which the lifecycle has no event for.
    current = await put({ ...current, state: 'challengeIssued', stateChangedAt: issuedAt });
    await registerChallenge(tx, deriveChallenge(c.challengeSecret, c.tenantId, current.id, issuedAt), { profile: storeName, deviceId: device.id, ...names }, issuedAt);
  }
  const password = deriveChallenge(c.challengeSecret, c.tenantId, current.id, current.stateChangedAt);
  dueAt(new Date(current.stateChangedAt.getTime() + CHALLENGE_TTL_MS));
  if (profile.keySize !== 2048 && profile.keySize !== 4096) throw new KeyfleetError('KF_USAGE', 'SCEP profile key size must be 2048 or 4096');
  return {
    ...base,
    state: current.state,
    request: {
      url: scepUrl(profile, storeName),
      challenge: password,
      expiresAt: new Date(current.stateChangedAt.getTime() + CHALLENGE_TTL_MS).toISOString(),
      subject: names.subject,
      ...(names.sanEmail === undefined ? {} : { sanEmail: names.sanEmail }),
      ...(names.sanUpn === undefined ? {} : { sanUpn: names.sanUpn }),
      keySize: profile.keySize,
      keyUsage: profile.keyUsage,
      caFingerprint: caFingerprint(ca),
    },
  };
}
