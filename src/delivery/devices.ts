/**
 * Managed devices as the administrator sees them (issue 4 "Managed
 * devices"): the list, retire and wipe, delete, and each device's status
 * for every policy and certificate. Enrolment and check-in are the device
 * side's (the delivery issue); this is what the admin API and
 * `keyfleet devices` wrap.
 *
 * Retire and wipe take effect in two steps, as in Intune: the admin's
 * action marks the device retirePending or wipePending at once, and the
 * device removes everything at its next check-in. What cannot wait is done
 * in the admin's transaction: the device's SCEP certificates are revoked
 * (cessationOfOperation), so the OCSP responder says so from that moment.
 * Imported (PFX) certificates are removed, never revoked: they are the
 * user's, and other devices still hold them (REFERENCE.md "Intune facts").
 */
import { ISSUING_CA_ID } from '../ca/authority.ts';
import { recorded, type Actor } from '../directory/audit.ts';
import { KeyfleetError } from '../errors.ts';
import { allowedNextStates, type CertificateIssuanceState } from '../policy/certificate-state.ts';
import type { JsonValue } from '../store/audit.ts';
import type { Page, PageOptions } from '../store/directory.ts';
import type { CertificateStateFilter, DeviceCertificateRecord, DeviceFilter, DevicePolicyStateRecord, ManagedDeviceRecord, PolicyStatus } from '../store/devices.ts';
import type { TenantStore } from '../store/store.ts';
import { CESSATION_OF_OPERATION, revokeEnrolledOnChallenges } from './scep-enrolment.ts';
import { certificateStateView, deviceView, type DeviceView } from './views.ts';

/** RFC 5280 §5.3.1 cessationOfOperation: the device no longer needs the certificate. */

/** What the device should have, as the evaluator sees it: the status view merges it with what was reported. */
export interface DeviceAssignment {
  /** Policies assigned to the device (through its user). */
  readonly policyIds: readonly string[];
  /** Assigned policies that cannot apply to it (the user has no Exchange Online mailbox). */
  readonly notApplicablePolicyIds: readonly string[];
  /** Assigned policies with a conflicting setting (src/policy/effective-state.ts). */
  readonly conflictingPolicyIds: readonly string[];
}

export type EvaluateDevice = (tenant: TenantStore, device: ManagedDeviceRecord) => Promise<DeviceAssignment>;

export interface PolicyStatusEntry {
  readonly policyId: string;
  readonly status: PolicyStatus;
  readonly detail: string | undefined;
  /** Undefined while nothing was reported (status unknown: pending). */
  readonly reportedAt: Date | undefined;
}

export interface DeviceStatus {
  readonly device: ManagedDeviceRecord;
  readonly policies: readonly PolicyStatusEntry[];
  readonly certificates: readonly DeviceCertificateRecord[];
}

export type ManagementAction = 'retire' | 'wipe';

export class DeviceAdmin {
  readonly #tenant: TenantStore;
  readonly #actor: Actor;
  readonly #clock: () => Date;
  readonly #evaluate: EvaluateDevice;

  constructor(tenant: TenantStore, actor: Actor, evaluate: EvaluateDevice, clock: () => Date = () => new Date()) {
    this.#tenant = tenant;
    this.#actor = actor;
    this.#evaluate = evaluate;
    this.#clock = clock;
  }

  async get(id: string): Promise<ManagedDeviceRecord> {
    const d = await this.#tenant.devices.getDevice(id);
    if (d === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no managed device with id "${id}"`);
    return d;
  }

  list(options: PageOptions & DeviceFilter = {}): Promise<Page<ManagedDeviceRecord>> {
    return this.#tenant.devices.listDevices(options);
  }

  /**
   * Marks the device for retirement (company data and certificates removed, the device left to its user)
   * or wiping, and revokes its SCEP certificates now. A device already retired, wiped or pending either is
   * KF_CONFLICT: the first action stands.
   */
  act(id: string, action: ManagementAction): Promise<ManagedDeviceRecord> {
    const at = this.#now();
    return recorded(this.#tenant, this.#actor, at, async (tx) => {
      const before = await tx.devices.getDevice(id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no managed device with id "${id}"`);
      if (before.managementState !== 'managed') throw new KeyfleetError('KF_CONFLICT', `device "${id}" is ${before.managementState}; it cannot be ${action === 'retire' ? 'retired' : 'wiped'} again`);
      const revoked = await revokeScepCertificates(tx, id, at);
      // A challenge handed out before would otherwise still enrol a fresh certificate.
      await tx.scep.withdrawChallenges(id, undefined, at);
      const after = await tx.devices.updateDevice(id, { managementState: action === 'retire' ? 'retirePending' : 'wipePending' }, at);
      if (after === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no managed device with id "${id}"`);
      return {
        result: after,
        action: `managedDevice.${action}`,
        resourceType: 'managedDevice',
        resourceId: id,
        before: deviceView(before),
        after: { ...deviceView(after), revokedCertificates: revoked },
      };
    });
  }

  /** Removes the device's record; only once it is retired or wiped (retire it first), so nothing stays issued to it. */
  delete(id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.devices.getDevice(id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no managed device with id "${id}"`);
      if (before.managementState !== 'retired' && before.managementState !== 'wiped') {
        throw new KeyfleetError('KF_CONFLICT', `device "${id}" is ${before.managementState}; retire or wipe it, and let it check in, before deleting it`);
      }
      await tx.devices.deleteDevice(id);
      return { result: undefined, action: 'managedDevice.delete', resourceType: 'managedDevice', resourceId: id, before: deviceView(before), after: null };
    });
  }

  /**
   * Every policy assigned to the device with its reported status, or `unknown` (pending) when it has not
   * reported yet; `notApplicable` and `conflict` come from evaluation when nothing newer was reported; and
   * policies it reported on that are no longer assigned, as `notAssigned` (their settings leave at the next
   * check-in). Then its certificates.
   */
  async status(id: string): Promise<DeviceStatus> {
    const device = await this.get(id);
    const [assignment, reported, certificates] = await Promise.all([
      this.#evaluate(this.#tenant, device),
      allPages((o) => this.#tenant.devices.listPolicyStates({ deviceId: id }, o)),
      allPages((o) => this.#tenant.devices.listCertificateStates({ deviceId: id }, o)),
    ]);
    // A retired or wiped device is managed no more: no policy applies to it.
    const gone = device.managementState === 'retired' || device.managementState === 'wiped';
    return { device, policies: gone ? [] : mergePolicyStatus(assignment, reported), certificates };
  }

  /** Devices' reported statuses for one policy (Graph deviceStatuses). */
  async policyDeviceStatuses(policyId: string, options: PageOptions = {}): Promise<Page<DevicePolicyStateRecord>> {
    await this.#requirePolicy(policyId);
    return this.#tenant.devices.listPolicyStates({ policyId }, options);
  }

  /** Certificates delivered through one profile, or held by one user's devices. */
  async certificateStates(filter: CertificateStateFilter, options: PageOptions = {}): Promise<Page<DeviceCertificateRecord>> {
    if (filter.profileId !== undefined && (await this.#tenant.resources.getResource('certificateProfile', filter.profileId)) === undefined) {
      throw new KeyfleetError('KF_NOT_FOUND', `no certificate profile with id "${filter.profileId}"`);
    }
    if (filter.deviceId !== undefined) await this.get(filter.deviceId);
    return this.#tenant.devices.listCertificateStates(filter, options);
  }

  /** One line per user for a policy (Graph userStatuses): the worst status among the user's devices. */
  async policyUserStatuses(policyId: string): Promise<UserStatus[]> {
    await this.#requirePolicy(policyId);
    const states = await allPages((o) => this.#tenant.devices.listPolicyStates({ policyId }, o));
    const byUser = new Map<string, { devices: number; status: PolicyStatus; reportedAt: Date }>();
    for (const s of states) {
      const device = await this.#tenant.devices.getDevice(s.deviceId);
      if (device === undefined) continue;
      const seen = byUser.get(device.userId);
      if (seen === undefined) byUser.set(device.userId, { devices: 1, status: s.status, reportedAt: s.reportedAt });
      else {
        seen.devices++;
        if (SEVERITY[s.status] > SEVERITY[seen.status]) seen.status = s.status;
        if (s.reportedAt > seen.reportedAt) seen.reportedAt = s.reportedAt;
      }
    }
    return [...byUser].map(([userId, v]) => ({ userId, devicesCount: v.devices, status: v.status, lastReportedAt: v.reportedAt })).sort((a, b) => (a.userId < b.userId ? -1 : 1));
  }

  /** Counts per status for a policy (Graph deviceStatusSummary). */
  async policySummary(policyId: string): Promise<Record<PolicyStatus, number>> {
    await this.#requirePolicy(policyId);
    const counts = Object.fromEntries(Object.keys(SEVERITY).map((k) => [k, 0])) as Record<PolicyStatus, number>;
    for (const s of await allPages((o) => this.#tenant.devices.listPolicyStates({ policyId }, o))) counts[s.status]++;
    return counts;
  }

  async #requirePolicy(id: string): Promise<void> {
    if ((await this.#tenant.resources.getResource('policy', id)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no policy with id "${id}"`);
  }

  #now(): Date {
    return new Date(Math.floor(this.#clock().getTime()));
  }
}

export interface UserStatus {
  readonly userId: string;
  readonly devicesCount: number;
  readonly status: PolicyStatus;
  readonly lastReportedAt: Date;
}

/** Which status a user's line shows when devices differ: the one that needs the admin most. */
const SEVERITY: Readonly<Record<PolicyStatus, number>> = {
  notAssigned: 0,
  notApplicable: 1,
  compliant: 2,
  remediated: 3,
  unknown: 4,
  nonCompliant: 5,
  conflict: 6,
  error: 7,
};

export function mergePolicyStatus(assignment: DeviceAssignment, reported: readonly DevicePolicyStateRecord[]): PolicyStatusEntry[] {
  const byPolicy = new Map(reported.map((r) => [r.policyId, r]));
  const notApplicable = new Set(assignment.notApplicablePolicyIds);
  const conflicting = new Set(assignment.conflictingPolicyIds);
  const out: PolicyStatusEntry[] = [];
  for (const policyId of assignment.policyIds) {
    const r = byPolicy.get(policyId);
    byPolicy.delete(policyId);
    if (r !== undefined) out.push({ policyId, status: r.status, detail: r.detail, reportedAt: r.reportedAt });
    else if (notApplicable.has(policyId)) out.push({ policyId, status: 'notApplicable', detail: 'the user has no Exchange Online mailbox', reportedAt: undefined });
    else if (conflicting.has(policyId)) out.push({ policyId, status: 'conflict', detail: 'another policy for the same app sets a key differently', reportedAt: undefined });
    else out.push({ policyId, status: 'unknown', detail: undefined, reportedAt: undefined });
  }
  for (const r of byPolicy.values()) out.push({ policyId: r.policyId, status: 'notAssigned', detail: 'no longer assigned; removed at the next check-in', reportedAt: r.reportedAt });
  return out.sort((a, b) => (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
}

/** Revokes, in `tx`, every SCEP certificate the device still holds; returns their serials. */
async function revokeScepCertificates(tx: TenantStore, deviceId: string, at: Date): Promise<string[]> {
  const revoked: string[] = [];
  const certificates = await allPages((o) => tx.devices.listCertificateStates({ deviceId }, o));
  for (const c of certificates) {
    if (c.source !== 'scep' || c.serialNumber === undefined) continue;
    const state = c.state as CertificateIssuanceState;
    if (state === 'revoked' || state === 'deleted' || state === 'removedFromCollection') continue;
    await tx.ca.revoke(ISSUING_CA_ID, c.serialNumber, CESSATION_OF_OPERATION, at);
    // The CA's record is what OCSP answers from; the device's state follows where the lifecycle allows
    // (a certificate whose deletion failed stays deleteFailed: it is revoked all the same).
    if (allowedNextStates(state, 'scep').includes('revoked')) await tx.devices.putCertificateState({ ...c, state: 'revoked', stateChangedAt: at });
    revoked.push(c.serialNumber);
  }
  // And whatever else was enrolled on the device's challenges (another device may have presented one).
  revoked.push(...(await revokeEnrolledOnChallenges(tx, deviceId, undefined, at)));
  return revoked;
}

async function allPages<T>(fetch: (options: PageOptions) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetch({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}

export function deviceStatusView(s: DeviceStatus): { [key: string]: JsonValue } & { device: DeviceView } {
  return {
    device: deviceView(s.device),
    policyStatuses: s.policies.map((p) => ({ policyId: p.policyId, status: p.status, detail: p.detail ?? null, lastReportedDateTime: p.reportedAt?.toISOString() ?? null })),
    managedDeviceCertificateStates: s.certificates.map(certificateStateView),
  };
}
