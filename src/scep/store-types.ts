/**
 * The slices of ScepStore (src/store/scep.ts) the SCEP service needs, so each
 * consumer names only what it uses (STYLE.md practice 2).
 */
import type { ScepStore } from '../store/scep.ts';

export type { ChallengeRecord, ConsumeResult, ScepTransactionRecord } from '../store/scep.ts';

/** What challenge validation needs. */
export type ChallengeStore = Pick<ScepStore, 'putChallenge' | 'consumeChallenge' | 'peekChallenge'>;

/** What transaction recording needs. */
export type ScepTransactionLog = Pick<ScepStore, 'recordTransaction' | 'getTransaction'>;
