/**
 * SCEP challenge passwords (RFC 8894 §2.2, §3.3.1: the challengePassword
 * attribute of the PKCS#10 request) and what a challenge allows.
 *
 * Two validators: a static shared password for simple setups, and one-time
 * challenges kept in the ScepStore (NDES-style: one use, expiring, default
 * 60 minutes — REFERENCE.md "SCEP in practice"), each bound to a profile,
 * optionally a device, and the exact subject and SAN the CSR must carry.
 * The store keeps only the SHA-256 of a password.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import type { ChallengeRecord, ChallengeStore } from './store-types.ts';

/** What a valid challenge allows: undefined fields are not constrained by the challenge. */
export interface ChallengeGrant {
  /** The exact subject DN (RFC 4514 string) the CSR must carry. */
  readonly subject: string | undefined;
  /** The SAN rfc822Name the CSR must carry (and no other). */
  readonly sanEmail: string | undefined;
  readonly sanUpn: string | undefined;
  readonly deviceId: string | undefined;
  /** True when the grant fixes the SAN (a CSR with SAN entries not granted is refused); false for a static password. */
  readonly bindsIdentity: boolean;
}

export type ChallengeRefusal = 'unknown' | 'used' | 'expired' | 'wrong-profile';

/** Why a request is not admitted under a valid challenge: a refusal of the challenge itself, or a detail about the request. */
export type NotAdmitted = { readonly reason: ChallengeRefusal } | { readonly reason: 'not-admitted'; readonly detail: string };

/**
 * Decides whether the request may use the challenge's grant (its names against the grant's, the device
 * still waiting …), before a one-time challenge is spent.
 */
export type Admission = (grant: ChallengeGrant) => NotAdmitted | undefined | Promise<NotAdmitted | undefined>;

export type ChallengeOutcome =
  | { readonly ok: true; readonly grant: ChallengeGrant }
  | { readonly ok: false; readonly reason: ChallengeRefusal }
  | { readonly ok: false; readonly reason: 'not-admitted'; readonly detail: string; readonly grant: ChallengeGrant };

export interface ChallengeValidator {
  /**
   * Checks a challenge password presented for `profile` at time `now`, then
   * `admit` with its grant. A one-time challenge is used up only when both
   * pass: a request the challenge does not allow (another subject, a
   * device no longer waiting) leaves it for the request it was made for.
   */
  validate(password: string, profile: string, now: Date, admit?: Admission): Promise<ChallengeOutcome>;
}

/** One shared password for every enrolment of the profiles it guards; no identity binding. */
export class StaticChallengeValidator implements ChallengeValidator {
  readonly #digest: Buffer;
  readonly #profiles: ReadonlySet<string> | undefined;

  /** `profiles`: the profiles the password is good for; default all. */
  constructor(password: string, profiles?: readonly string[]) {
    if (password.length === 0) throw new KeyfleetError('KF_USAGE', 'a static SCEP challenge password must not be empty');
    this.#digest = sha256(password);
    this.#profiles = profiles ? new Set(profiles) : undefined;
  }

  async validate(password: string, profile: string, _now: Date, admit?: Admission): Promise<ChallengeOutcome> {
    // Compare digests, so the comparison takes the same time whatever the lengths.
    if (!timingSafeEqual(sha256(password), this.#digest)) return { ok: false, reason: 'unknown' };
    if (this.#profiles && !this.#profiles.has(profile)) return { ok: false, reason: 'wrong-profile' };
    return admitted({ subject: undefined, sanEmail: undefined, sanUpn: undefined, deviceId: undefined, bindsIdentity: false }, admit);
  }
}

export interface ChallengeRequest {
  readonly profile: string;
  /** The exact subject DN (RFC 4514 string) the CSR must carry. */
  readonly subject: string;
  readonly sanEmail?: string;
  readonly sanUpn?: string;
  readonly deviceId?: string;
  /** Lifetime in milliseconds; default 60 minutes. */
  readonly ttlMs?: number;
}

export interface IssuedChallenge {
  /** The one-time password to hand to the device (shown once, never stored). */
  readonly password: string;
  readonly expiresAt: Date;
}

export const DEFAULT_CHALLENGE_TTL_MS = 60 * 60 * 1000;

/** One-time challenges in the ScepStore. */
export class StoreChallengeValidator implements ChallengeValidator {
  readonly #store: ChallengeStore;
  readonly #clock: () => Date;

  constructor(store: ChallengeStore, clock: () => Date = () => new Date()) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Creates a challenge: 32 random octets, base64url; only its SHA-256 is stored. */
  async issueChallenge(request: ChallengeRequest): Promise<IssuedChallenge> {
    const ttl = request.ttlMs ?? DEFAULT_CHALLENGE_TTL_MS;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new KeyfleetError('KF_USAGE', 'a challenge lifetime must be a positive number of milliseconds');
    if (request.subject.trim() === '') throw new KeyfleetError('KF_USAGE', 'a challenge must name the subject it allows');
    const password = randomBytes(32).toString('base64url');
    const createdAt = this.#clock();
    const expiresAt = new Date(createdAt.getTime() + ttl);
    const record: ChallengeRecord = {
      hash: sha256(password).toString('hex'),
      profile: request.profile,
      deviceId: request.deviceId,
      subject: request.subject,
      sanEmail: request.sanEmail,
      sanUpn: request.sanUpn,
      createdAt,
      expiresAt,
    };
    await this.#store.putChallenge(record);
    return { password, expiresAt };
  }

  async validate(password: string, profile: string, now: Date, admit?: Admission): Promise<ChallengeOutcome> {
    const hash = sha256(password).toString('hex');
    // Looked at first, spent last: a presenter the challenge does not admit cannot use it up.
    const seen = await this.#store.peekChallenge(hash, now);
    if (seen.outcome !== 'ok') return { ok: false, reason: seen.outcome };
    const c = seen.challenge;
    if (c.profile !== profile) return { ok: false, reason: 'wrong-profile' };
    const grant = { subject: c.subject, sanEmail: c.sanEmail, sanUpn: c.sanUpn, deviceId: c.deviceId, bindsIdentity: true };
    const outcome = await admitted(grant, admit);
    if (!outcome.ok) return outcome;
    // Of concurrent requests the challenge admits, one spends it; the others find it used.
    const taken = await this.#store.consumeChallenge(hash, now);
    return taken.outcome === 'ok' ? outcome : { ok: false, reason: taken.outcome };
  }
}

async function admitted(grant: ChallengeGrant, admit: Admission | undefined): Promise<ChallengeOutcome> {
  const no = await admit?.(grant);
  if (no === undefined) return { ok: true, grant };
  return no.reason === 'not-admitted' ? { ok: false, reason: 'not-admitted', detail: no.detail, grant } : { ok: false, reason: no.reason };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
