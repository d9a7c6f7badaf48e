/** What the SCEP server needs from storage. Tenant-scoped like every store interface. */

export interface ScepProfileRecord {
  readonly name: string;
  /** The issuing CA's id in the CaStore. */
  readonly caId: string;
  /** The certificate template and limits, as JSON the CA layer validates. */
  readonly template: unknown;
  readonly createdAt: Date;
}

export interface ChallengeRecord {
  /** SHA-256 of the challenge password, hex: the password itself is never stored. */
  readonly hash: string;
  readonly profile: string;
  /** The device (or other requester) the challenge is bound to; undefined for CLI-issued challenges. */
  readonly deviceId: string | undefined;
  /** The exact subject DN (RFC 4514 string) the CSR must carry. */
  readonly subject: string;
  /** The SAN rfc822Name the CSR must carry, when any. */
  readonly sanEmail: string | undefined;
  /** A SAN UPN the CSR must carry, when any. */
  readonly sanUpn: string | undefined;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export type ConsumeResult =
  | { readonly outcome: 'ok'; readonly challenge: ChallengeRecord }
  | { readonly outcome: 'unknown' | 'used' | 'expired' };

export interface ScepTransactionRecord {
  readonly transactionId: string;
  readonly profile: string;
  readonly messageType: 'PKCSReq' | 'RenewalReq' | 'GetCertInitial' | 'GetCert' | 'GetCRL';
  /** Subject of the request or of the signer certificate. */
  readonly requester: string;
  readonly outcome: 'success' | 'failure' | 'pending';
  readonly failInfo: string | undefined;
  readonly serialHex: string | undefined;
  readonly createdAt: Date;
}

export interface ScepStore {
  putProfile(record: ScepProfileRecord): Promise<void>;
  getProfile(name: string): Promise<ScepProfileRecord | undefined>;
  listProfiles(): Promise<ScepProfileRecord[]>;
  putChallenge(record: ChallengeRecord): Promise<void>;
  /**
   * Marks every unused challenge bound to the device used (only those of profiles whose name starts with
   * `profilePrefix`, when given): a device that was retired, or lost the profile, cannot enrol with a
   * challenge it was handed before. Returns how many were withdrawn.
   */
  withdrawChallenges(deviceId: string, profilePrefix: string | undefined, at: Date): Promise<number>;
  /** Atomically marks a challenge used and returns it; a challenge can succeed once. */
  consumeChallenge(hash: string, now: Date): Promise<ConsumeResult>;
  /** What consumeChallenge would answer now, without using the challenge up. */
  peekChallenge(hash: string, now: Date): Promise<ConsumeResult>;
  /** Records a transaction; a replayed transaction id for a different request is the caller's to detect via getTransaction. */
  recordTransaction(record: ScepTransactionRecord): Promise<void>;
  getTransaction(transactionId: string): Promise<ScepTransactionRecord | undefined>;
  listTransactions(options?: { readonly limit?: number }): Promise<ScepTransactionRecord[]>;
}
