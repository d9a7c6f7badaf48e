/**
 * The life of one certificate on one device, with Graph's
 * `managedDeviceCertificateState.certificateIssuanceState` values
 * (REFERENCE.md), and the transitions delivery may make between them.
 *
 * Two flows, after Intune:
 *   SCEP (a key made on the device):
 *     requested → challengeIssued → challengeValidationSucceeded
 *       → issuePending → issued → responsePending → enrollmentSucceeded
 *       → installed ⇄ renewalRequested → challengeIssued → … → renewVerified
 *   PKCS-imported (a PFX the admin imported; nothing to enrol):
 *     requested → enrollmentNotNeeded → installed
 * Every …Failed state may be retried (back to requested) or given up
 * (deleted). Imported certificates are never renewed (the admin imports new
 * ones) and are removed, not revoked, on unenrollment; SCEP certificates are
 * removed and revoked (REFERENCE.md "Intune facts"), so `source` narrows the
 * table.
 *
 * Events are named after the state they lead to: delivery reports what
 * happened ("issued"), and the machine says whether that can happen now.
 */
import { refuse } from './refusal.ts';

export const CertificateIssuanceStates = [
  'challengeIssued', 'challengeIssueFailed', 'requestCreationFailed', 'requestSubmitFailed', 'challengeValidationSucceeded',
  'challengeValidationFailed', 'issueFailed', 'issuePending', 'issued', 'responseProcessingFailed', 'responsePending',
  'enrollmentSucceeded', 'enrollmentNotNeeded', 'revoked', 'removedFromCollection', 'renewVerified', 'installFailed',
  'installed', 'deleteFailed', 'deleted', 'renewalRequested', 'requested',
] as const;
export type CertificateIssuanceState = (typeof CertificateIssuanceStates)[number];

export type CertificateSource = 'scep' | 'pkcsImported';

type S = CertificateIssuanceState;

/** Retry or give up: what every failure allows. */
const afterFailure: readonly S[] = ['requested', 'deleted'];
/** What a certificate on the device may go through (removal; revocation is filtered per source). */
const onDevice: readonly S[] = ['revoked', 'removedFromCollection', 'deleted', 'deleteFailed'];

const successors: Readonly<Record<S, readonly S[]>> = {
  requested: ['challengeIssued', 'challengeIssueFailed', 'enrollmentNotNeeded', 'deleted'],
  challengeIssued: ['challengeValidationSucceeded', 'challengeValidationFailed', 'requestCreationFailed', 'requestSubmitFailed', ...afterFailure],
  challengeIssueFailed: afterFailure,
  requestCreationFailed: afterFailure,
  requestSubmitFailed: afterFailure,
  challengeValidationFailed: afterFailure,
  challengeValidationSucceeded: ['issuePending', 'issued', 'issueFailed'],
  issuePending: ['issued', 'issueFailed'],
  issueFailed: afterFailure,
  // Issued but not yet on the device: revocable if the response never arrives.
  issued: ['responsePending', 'enrollmentSucceeded', 'responseProcessingFailed', 'revoked'],
  responsePending: ['enrollmentSucceeded', 'responseProcessingFailed', 'revoked'],
  responseProcessingFailed: ['requested', 'revoked', 'deleted'],
  enrollmentSucceeded: ['installed', 'installFailed', 'renewVerified', 'revoked'],
  enrollmentNotNeeded: ['installed', 'installFailed', 'deleted'],
  installFailed: ['installed', 'requested', 'revoked', 'deleted'],
  installed: ['renewalRequested', ...onDevice],
  renewalRequested: ['challengeIssued', 'challengeIssueFailed', ...onDevice],
  // The renewed certificate is on the device: from here it lives like an installed one.
  renewVerified: ['renewalRequested', ...onDevice],
  revoked: ['removedFromCollection', 'deleted', 'deleteFailed'],
  removedFromCollection: ['deleted', 'deleteFailed', 'requested'],
  deleteFailed: ['deleted', 'removedFromCollection'],
  deleted: ['requested'],
};

/** States an imported (PFX) certificate never reaches: no challenge, no issuance, no renewal, no revocation. */
const notForImported: ReadonlySet<S> = new Set<S>([
  'challengeIssued', 'challengeIssueFailed', 'requestCreationFailed', 'requestSubmitFailed', 'challengeValidationSucceeded',
  'challengeValidationFailed', 'issueFailed', 'issuePending', 'issued', 'responseProcessingFailed', 'responsePending',
  'enrollmentSucceeded', 'revoked', 'renewVerified', 'renewalRequested',
]);

export function isCertificateIssuanceState(value: unknown): value is CertificateIssuanceState {
  return typeof value === 'string' && (CertificateIssuanceStates as readonly string[]).includes(value);
}

/** The states `current` may move to (for `undefined`, a certificate not yet requested: only "requested"). */
export function allowedNextStates(current: CertificateIssuanceState | undefined, source?: CertificateSource): readonly CertificateIssuanceState[] {
  const next = current === undefined ? (['requested'] as const) : successors[current];
  if (source === 'pkcsImported') return next.filter((s) => !notForImported.has(s));
  if (source === 'scep') return next.filter((s) => s !== 'enrollmentNotNeeded');
  return next;
}

/**
 * The state after `event`, or a KF_USAGE refusal (detail
 * 'certificate-transition-impossible') when the certificate cannot get
 * there from `current`. Staying in the same state is not a transition and is
 * refused too, so a replayed report shows.
 */
export function nextState(current: CertificateIssuanceState | undefined, event: CertificateIssuanceState, source?: CertificateSource): CertificateIssuanceState {
  if (!isCertificateIssuanceState(event)) throw refuse('certificate-transition-impossible', `unknown certificate state "${String(event)}"`);
  if (!allowedNextStates(current, source).includes(event)) {
    const what = source === undefined ? 'a certificate' : source === 'scep' ? 'a SCEP certificate' : 'an imported certificate';
    throw refuse('certificate-transition-impossible', `${what} cannot go from ${current ?? 'nothing'} to ${event}`);
  }
  return event;
}

/** States in which the certificate is (or should be) usable on the device. */
export function isInstalled(state: CertificateIssuanceState): boolean {
  return state === 'installed' || state === 'renewVerified';
}
