/**
 * What a device reports back (docs/delivery.md "Check-in"), applied to the
 * state it names, one item at a time in the caller's transaction.
 *
 * Certificates move by src/policy/certificate-state.ts: a device reports
 * where it got to ("installed", "installFailed", "deleted" …) and the
 * service walks the lifecycle there, through the steps it saw happen on its
 * side (a SCEP certificate goes challengeIssued → challengeValidationSucceeded
 * → issued → enrollmentSucceeded → installed). A SCEP install is believed
 * only when the CA issued that serial under the profile's SCEP name with the
 * reported thumbprint; an imported one only for the PFX's own thumbprint.
 * Replays and reports out of order fail as impossible transitions.
 */
import { ISSUING_CA_ID, normaliseSerial, type CertificateAuthority } from '../ca/authority.ts';
import { KeyfleetError } from '../errors.ts';
import { isCertificateIssuanceState, nextState, type CertificateIssuanceState } from '../policy/certificate-state.ts';
import type { ReportItem } from '../protocol/device-api.ts';
import { POLICY_STATUSES, type ManagedDeviceRecord, type PolicyStatus } from '../store/devices.ts';
import type { TenantStore } from '../store/store.ts';
import { decodeCertificate } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { renewalTime, scepStorePrefix } from './scep-enrolment.ts';

export interface ReportContext {
  readonly tx: TenantStore;
  readonly device: ManagedDeviceRecord;
  readonly ca: CertificateAuthority | undefined;
  readonly now: Date;
}

/** What applying an item implies for the device row: a SCEP install sets when its renewal falls due. */
export interface ReportEffect {
  readonly recheckAt?: Date;
}

const ENROLMENT_PATH: readonly CertificateIssuanceState[] = ['challengeValidationSucceeded', 'issued', 'enrollmentSucceeded'];

export async function applyReport(c: ReportContext, item: ReportItem): Promise<ReportEffect> {
  if (typeof item !== 'object' || item === null || typeof item.id !== 'string' || typeof item.state !== 'string' || item.id.length > 128 || item.state.length > 64) {
    throw new KeyfleetError('KF_USAGE', 'a report item needs kind, id and state');
  }
  if (item.errorCode !== undefined && (typeof item.errorCode !== 'string' || item.errorCode.length > 128)) throw new KeyfleetError('KF_USAGE', 'errorCode must be at most 128 characters');
  switch (item.kind) {
    case 'policy':
      await reportPolicy(c, item);
      return {};
    case 'device':
      await reportDevice(c, item);
      return {};
    case 'scep':
    case 'imported':
      return reportCertificate(c, item);
    default:
      throw new KeyfleetError('KF_USAGE', `unknown report kind "${String(item.kind)}"`);
  }
}

async function reportPolicy(c: ReportContext, item: ReportItem): Promise<void> {
  if (!(POLICY_STATUSES as readonly string[]).includes(item.state)) throw new KeyfleetError('KF_USAGE', `unknown policy status "${item.state}"`);
  const known = (await c.tx.devices.listPolicyStates({ deviceId: c.device.id, policyId: item.id }, { limit: 1 })).items[0];
  if (known === undefined) throw new KeyfleetError('KF_NOT_FOUND', `policy "${item.id}" was never delivered to this device`);
  await c.tx.devices.putPolicyState({ deviceId: c.device.id, policyId: item.id, status: item.state as PolicyStatus, detail: item.errorCode, reportedAt: c.now });
}

/** The device carried out a retire or wipe: its record says so, and it may no longer call. */
async function reportDevice(c: ReportContext, item: ReportItem): Promise<void> {
  if (item.id !== c.device.id) throw new KeyfleetError('KF_NOT_FOUND', 'a device reports only on itself');
  const done = c.device.managementState === 'retirePending' ? 'retired' : c.device.managementState === 'wipePending' ? 'wiped' : undefined;
  if (done === undefined || item.state !== done) throw new KeyfleetError('KF_USAGE', `the device is ${c.device.managementState}; it cannot report ${item.state}`);
  // Whatever the device held is gone with it.
  for (const row of (await c.tx.devices.listCertificateStates({ deviceId: c.device.id }, { limit: 1000 })).items) {
    if (row.state !== 'deleted' && row.state !== 'removedFromCollection') await c.tx.devices.putCertificateState({ ...row, state: 'removedFromCollection', stateChangedAt: c.now });
  }
  await c.tx.delivery.cancelDeliveryRequests(c.device.id, undefined, c.now);
  await c.tx.scep.withdrawChallenges(c.device.id, undefined, c.now);
  // Its policies no longer apply to it: it leaves the policies' device and user statuses.
  for (const p of (await c.tx.devices.listPolicyStates({ deviceId: c.device.id }, { limit: 1000 })).items) await c.tx.devices.deletePolicyState(c.device.id, p.policyId);
  await c.tx.devices.updateDevice(c.device.id, { managementState: done }, c.now);
}

async function reportCertificate(c: ReportContext, item: ReportItem): Promise<ReportEffect> {
  const row = await c.tx.devices.getCertificateState(item.id);
  if (row === undefined || row.deviceId !== c.device.id) throw new KeyfleetError('KF_NOT_FOUND', `no certificate "${item.id}" on this device`);
  const source = item.kind === 'scep' ? 'scep' : 'pkcsImported';
  if (row.source !== source) throw new KeyfleetError('KF_USAGE', `certificate "${item.id}" is not a ${item.kind} certificate`);
  if (!isCertificateIssuanceState(item.state)) throw new KeyfleetError('KF_USAGE', `unknown certificate state "${item.state}"`);
  const target = item.state;
  const current = row.state as CertificateIssuanceState;

  if (target === 'installed' && source === 'scep') {
    const { fields, notBefore } = await verifyScepInstall(c, row.profileId, item);
    let state = current;
    const renewal = current === 'challengeIssued' && row.serialNumber !== undefined;
    for (const step of current === 'challengeIssued' ? ENROLMENT_PATH : []) state = nextState(state, step, 'scep');
    state = nextState(state, renewal ? 'renewVerified' : 'installed', 'scep');
    await c.tx.devices.putCertificateState({ ...row, state, stateChangedAt: c.now, errorCode: undefined, ...fields });
    // The check-in that would have set the renewal time may not come (the device keeps the report's ETag).
    const profile = await c.tx.resources.getResource('certificateProfile', row.profileId);
    const threshold = profile?.body['renewalThresholdPercentage'];
    return typeof threshold === 'number' ? { recheckAt: renewalTime(notBefore, fields.expiresAt, threshold) } : {};
  }
  if (target === 'installed' && source === 'pkcsImported' && (item.thumbprint ?? '').toUpperCase() !== row.thumbprint) {
    throw new KeyfleetError('KF_USAGE', `certificate "${item.id}" is ${row.thumbprint}, not ${item.thumbprint ?? 'unnamed'}`);
  }
  const state = nextState(current, target, source);
  await c.tx.devices.putCertificateState({ ...row, state, stateChangedAt: c.now, errorCode: target.endsWith('Failed') ? (item.errorCode ?? 'unspecified') : undefined });
  return {};
}

/** The serial must be one the CA issued for this profile, with the thumbprint reported, and not revoked. */
async function verifyScepInstall(c: ReportContext, profileId: string, item: ReportItem) {
  if (c.ca === undefined) throw new KeyfleetError('KF_CA_NOT_INITIALISED', 'this tenant has no certificate authority');
  // As the CA keeps serials: the INTEGER's contents octets in lower-case hex, leading zero octets kept.
  const serial = normaliseSerial(item.serialNumber ?? '');
  const issued = await c.tx.ca.getIssued(ISSUING_CA_ID, serial);
  const prefix = scepStorePrefix(profileId);
  if (issued === undefined || issued.profile === undefined || !issued.profile.startsWith(prefix)) {
    throw new KeyfleetError('KF_USAGE', `serial ${serial} was not issued for this profile`);
  }
  const certificate = decodeCertificate(issued.certificateDer);
  if (item.thumbprint === undefined || certificate.thumbprint !== item.thumbprint.toUpperCase()) throw new KeyfleetError('KF_USAGE', `serial ${serial} does not have thumbprint ${item.thumbprint ?? '(none)'}`);
  // Issued on this device's own challenge (the SCEP server records the challenge's device as requester):
  // another device cannot claim a certificate enrolled with a challenge it was not handed.
  if (issued.requester !== c.device.id) throw new KeyfleetError('KF_USAGE', `certificate ${serial} was not enrolled by this device`);
  if (issued.status === 'revoked') throw new KeyfleetError('KF_CONFLICT', `certificate ${serial} is revoked`);
  return {
    fields: {
      serialNumber: issued.serialHex,
      thumbprint: certificate.thumbprint,
      issuer: nameToString(certificate.issuer),
      subject: issued.subject,
      expiresAt: issued.notAfter,
    },
    notBefore: issued.notBefore,
  };
}
