/**
 * One tenant's effective state, evaluated from an in-memory snapshot: the
 * group index and compiled assignments of src/policy, the prepared
 * policies, the certificate profiles, each user's UPN and mailbox kind, and
 * each user's imported PFX certificates (ids, thumbprints, purposes; never
 * the encrypted PFX or password). Built once per change of the tenant
 * (evaluator-cache.ts), it answers for a user or a device in microseconds,
 * which is what a check-in and a re-evaluation of every device
 * (reevaluate.ts) need at issue 4's benchmark scale (100,000 users, 300,000
 * devices, 2,000 nested groups, 50 policies).
 *
 * Applicability: the seed deploys S/MIME only to Exchange Online mailboxes.
 * For a user without one (or a device whose user is gone), every policy —
 * each is an S/MIME app configuration — is notApplicable and delivers no
 * configuration, and S/MIME certificate profiles (SCEP, PKCS-imported for
 * smimeSigning or smimeEncryption) deliver nothing; apps, trusted roots and
 * other imported purposes still do. A device that is retired or wiped, or
 * has either pending, should have nothing (EMPTY_DESIRED_STATE).
 */
import {
  type AssignmentTarget,
  type AssignmentTargetKind,
  type CompiledAssignments,
  type EffectiveState,
  type EvaluablePolicy,
  type GroupIndex,
  type GroupMembership,
  type Principal,
  type SmimePolicy,
  buildGroupIndex,
  compileAssignments,
  effectiveState,
  evaluablePolicy,
} from '../policy/index.ts';
import type { ManagementState } from '../store/devices.ts';
import type { ResourceCollection, ResourceRecord } from '../store/resources.ts';
import {
  type DesiredAppConfiguration,
  type DesiredCertificate,
  type DesiredState,
  EMPTY_DESIRED_STATE,
  type PfxRef,
  compareIds,
  desiredStateHash,
  orderedSettings,
} from './desired-state.ts';

/** A certificate profile as evaluation needs it: its kind and, for an imported one, its purpose. */
export interface ProfileRef {
  readonly id: string;
  readonly kind: string;
  readonly intendedPurpose?: string;
}

export interface UserRef {
  readonly id: string;
  readonly userPrincipalName: string;
  readonly isExchangeOnline: boolean;
}

/** Everything an evaluator is built from: plain data, read by snapshot.ts or written by a test. */
export interface TenantSnapshot {
  /** The audit head's seq the snapshot was read after (0 for an empty log): the tenant's change counter. */
  readonly seq: number;
  readonly groupIds: readonly string[];
  readonly memberships: readonly GroupMembership[];
  readonly targets: readonly AssignmentTarget[];
  readonly policies: readonly { readonly id: string; readonly policy: SmimePolicy }[];
  readonly profiles: readonly ProfileRef[];
  readonly users: Iterable<UserRef>;
  readonly pfx: Iterable<PfxRef & { readonly userPrincipalName: string }>;
  /**
   * The documents behind the snapshot's policies, certificate profiles and apps, as stored: a check-in
   * reads them here, consistent with its evaluation, rather than from the store.
   */
  readonly records?: readonly ResourceRecord[];
}

/** What evaluateDevice needs of a device: a DeviceRef or a ManagedDeviceRecord. */
export interface DeviceSubject {
  readonly id: string;
  readonly userId: string;
  readonly managementState: ManagementState;
}

export type NotApplicableReason = 'no-exchange-online-mailbox' | 'user-unknown' | 'device-not-managed';

export interface Applicability {
  readonly id: string;
  readonly status: 'applicable' | 'notApplicable';
  readonly reason?: NotApplicableReason;
}

export interface Evaluation {
  /** Assignments, merged configurations and conflicts, as for the admin API's effectiveState. */
  readonly state: EffectiveState;
  /** Every assigned policy, in id order. */
  readonly policies: readonly Applicability[];
  /** Every assigned certificate profile, in id order. */
  readonly certificateProfiles: readonly Applicability[];
  readonly desired: DesiredState;
}

export interface DeviceEvaluation extends Evaluation {
  readonly deviceId: string;
  readonly userId: string;
  /** desired-state.ts desiredStateHash of `desired`. */
  readonly desiredStateHash: string;
}

export interface SnapshotStats {
  readonly users: number;
  readonly groups: number;
  readonly memberships: number;
  readonly assignmentTargets: number;
  readonly policies: number;
  readonly certificateProfiles: number;
  readonly pfxCertificates: number;
}

const MANAGED: ReadonlySet<ManagementState> = new Set(['managed']);
const SMIME_PURPOSES: ReadonlySet<string> = new Set(['smimeSigning', 'smimeEncryption']);
const NO_PFX: readonly PfxRef[] = [];
const EMPTY_HASH = desiredStateHash(EMPTY_DESIRED_STATE);
const KIND_ORDER: Record<AssignmentTargetKind, number> = { app: 0, certificateProfile: 1, policy: 2 };

interface UserFacts {
  readonly exchangeOnline: boolean;
  /** The user's imported certificates, by id. */
  readonly pfx: readonly PfxRef[];
}

export class TenantEvaluator {
  readonly seq: number;
  readonly stats: SnapshotStats;
  readonly #index: GroupIndex;
  readonly #compiled: CompiledAssignments;
  readonly #policies: ReadonlyMap<string, EvaluablePolicy>;
  readonly #profiles: ReadonlyMap<string, ProfileRef>;
  readonly #users: ReadonlyMap<string, UserFacts>;
  /** Whether some group has a device as a direct member (then a device's state is more than its user's). */
  readonly #deviceMembers: boolean;
  readonly #hashByUser = new Map<string, string>();
  readonly #records = new Map<string, ResourceRecord>();

  constructor(snapshot: TenantSnapshot) {
    this.seq = snapshot.seq;
    for (const r of snapshot.records ?? []) this.#records.set(`${r.collection}\u0000${r.id}`, r);
    // Targets in kind-then-id order make every effective list come out in id order, with no sort per evaluation.
    const targets = [...snapshot.targets].sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || compareIds(a.id, b.id));
    const assigned = new Set<string>();
    for (const t of targets) for (const g of [...t.include, ...t.exclude]) assigned.add(g);
    // Only assigned groups need a bit: 2,000 groups with a few hundred assigned stay a few hundred KB.
    this.#deviceMembers = snapshot.memberships.some((m) => m.memberType === 'device');
    this.#index = buildGroupIndex(snapshot.groupIds.map((id) => ({ id })), snapshot.memberships, { columns: assigned });
    this.#compiled = compileAssignments(this.#index, targets);

    const policies = new Map<string, EvaluablePolicy>();
    for (const { id, policy } of snapshot.policies) {
      // Stored policies were validated on the way in; one that no longer compiles is left out (its
      // assignments then show as warning "policy-unknown") rather than failing every device's evaluation.
      try {
        policies.set(id, evaluablePolicy(id, policy));
      } catch {
        continue;
      }
    }
    this.#policies = policies;
    this.#profiles = new Map(snapshot.profiles.map((p) => [p.id, p]));

    const pfxByUpn = new Map<string, PfxRef[]>();
    let pfxCount = 0;
    for (const p of snapshot.pfx) {
      const key = p.userPrincipalName.toLowerCase();
      const ref: PfxRef = { id: p.id, thumbprint: p.thumbprint, intendedPurpose: p.intendedPurpose };
      const list = pfxByUpn.get(key);
      if (list) list.push(ref);
      else pfxByUpn.set(key, [ref]);
      pfxCount++;
    }
    for (const list of pfxByUpn.values()) list.sort((a, b) => compareIds(a.id, b.id));
    const users = new Map<string, UserFacts>();
    for (const u of snapshot.users) users.set(u.id, { exchangeOnline: u.isExchangeOnline, pfx: pfxByUpn.get(u.userPrincipalName.toLowerCase()) ?? NO_PFX });
    this.#users = users;

    this.stats = {
      users: users.size,
      groups: snapshot.groupIds.length,
      memberships: snapshot.memberships.length,
      assignmentTargets: targets.length,
      policies: policies.size,
      certificateProfiles: this.#profiles.size,
      pfxCertificates: pfxCount,
    };
  }

  /** The assignment-level effective state of a user, a device, or a device with its user. */
  effectiveState(principal: Principal): EffectiveState {
    return effectiveState(principal, this.#index, this.#compiled, this.#policies);
  }

  /** What reaches the user: assignments to their groups and to all users (not those to all devices). */
  evaluateUser(userId: string): Evaluation {
    return this.#evaluate({ userId }, userId, true);
  }

  /** A policy, certificate profile or app as the snapshot read it; undefined when it had none by that id. */
  resource(collection: ResourceCollection, id: string): ResourceRecord | undefined {
    return this.#records.get(`${collection}\u0000${id}`);
  }

  /** The device's effective state, what it should have, and the hash of that. */
  evaluateDevice(device: DeviceSubject): DeviceEvaluation {
    const e = this.#evaluate({ userId: device.userId, deviceId: device.id }, device.userId, MANAGED.has(device.managementState));
    return { deviceId: device.id, userId: device.userId, ...e, desiredStateHash: desiredStateHash(e.desired) };
  }

  /**
   * evaluateDevice(device).desiredStateHash: what re-evaluation compares and stores. While no group has a
   * device as a member (the directory holds user and group members only), a managed device's state is its
   * user's, so the hash is computed once per user: a third of the work at three devices per user.
   */
  desiredStateHashOf(device: DeviceSubject): string {
    if (!MANAGED.has(device.managementState)) return EMPTY_HASH;
    if (this.#deviceMembers) return this.evaluateDevice(device).desiredStateHash;
    let hash = this.#hashByUser.get(device.userId);
    if (hash === undefined) {
      hash = desiredStateHash(this.#evaluate({ userId: device.userId, deviceId: device.id }, device.userId, true).desired);
      this.#hashByUser.set(device.userId, hash);
    }
    return hash;
  }

  #evaluate(principal: Principal, userId: string, managed: boolean): Evaluation {
    const state = this.effectiveState(principal);
    const user = this.#users.get(userId);
    const reason: NotApplicableReason | undefined = !managed ? 'device-not-managed' : user === undefined ? 'user-unknown' : user.exchangeOnline ? undefined : 'no-exchange-online-mailbox';
    const policies = state.policies.map((id) => applicability(id, reason));
    if (!managed) {
      return { state, policies, certificateProfiles: state.certificateProfiles.map((id) => applicability(id, reason)), desired: EMPTY_DESIRED_STATE };
    }

    const appConfigurations: DesiredAppConfiguration[] =
      reason === undefined ? state.appConfigurations.map((c) => ({ appId: c.appId, settings: orderedSettings(c.settings) })) : [];
    if (appConfigurations.length > 1) appConfigurations.sort((a, b) => compareIds(a.appId, b.appId));

    const certificateProfiles: Applicability[] = [];
    const certificates: DesiredCertificate[] = [];
    for (const id of state.certificateProfiles) {
      const profile = this.#profiles.get(id);
      if (profile === undefined) continue;
      const smime = profile.kind === 'iosScepCertificateProfile' || (profile.kind === 'iosImportedPfxCertificateProfile' && SMIME_PURPOSES.has(profile.intendedPurpose ?? ''));
      const withheld = smime ? reason : undefined;
      certificateProfiles.push(applicability(id, withheld));
      if (withheld !== undefined) continue;
      const c = desiredCertificate(profile, user?.pfx ?? NO_PFX);
      if (c !== undefined) certificates.push(c);
    }
    return { state, policies, certificateProfiles, desired: { apps: state.apps, appConfigurations, certificates } };
  }
}

/**
 * The evaluation as devices.ts's status view takes it (DeviceAssignment):
 * assigned, notApplicable and conflicting policy ids, each in id order.
 */
export function policySummary(e: Evaluation): { policyIds: string[]; notApplicablePolicyIds: string[]; conflictingPolicyIds: string[] } {
  const conflicting = new Set<string>();
  for (const c of e.state.conflicts) for (const v of c.values) conflicting.add(v.policyId);
  return {
    policyIds: e.policies.map((p) => p.id),
    notApplicablePolicyIds: e.policies.filter((p) => p.status === 'notApplicable').map((p) => p.id),
    conflictingPolicyIds: [...conflicting].sort(compareIds),
  };
}

function applicability(id: string, reason: NotApplicableReason | undefined): Applicability {
  return reason === undefined ? { id, status: 'applicable' } : { id, status: 'notApplicable', reason };
}

function desiredCertificate(profile: ProfileRef, pfx: readonly PfxRef[]): DesiredCertificate | undefined {
  switch (profile.kind) {
    case 'iosTrustedRootCertificate':
      return { kind: 'trustedRoot', profileId: profile.id };
    case 'iosScepCertificateProfile':
      return { kind: 'scep', profileId: profile.id };
    case 'iosImportedPfxCertificateProfile': {
      const purpose = profile.intendedPurpose ?? 'unassigned';
      return { kind: 'pkcsImported', profileId: profile.id, intendedPurpose: purpose, pfx: pfx.filter((p) => p.intendedPurpose === purpose) };
    }
    default:
      return undefined;
  }
}
