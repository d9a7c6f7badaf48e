/** ScepStore (src/store/scep.ts) on Kysely, for one tenant. */
import type { Kysely, Selectable } from 'kysely';
import type {
  ChallengeRecord,
  ConsumeResult,
  ScepProfileRecord,
  ScepStore,
  ScepTransactionRecord,
} from '../scep.ts';
import { guarded } from './errors.ts';
import type { Database, ScepChallengesTable, ScepProfilesTable, ScepTransactionsTable } from './schema.ts';
import { fromMs, orNull, orUndefined, pageSize, toMs } from './values.ts';

export class KyselyScepStore implements ScepStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db;
    this.#tenantId = tenantId;
  }

  putProfile(record: ScepProfileRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      name: record.name,
      ca_id: record.caId,
      template: JSON.stringify(record.template ?? null),
      created_at: toMs(record.createdAt, 'createdAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('scep_profiles').values(row).execute();
      },
      { conflict: `a SCEP profile named "${record.name}" already exists`, missing: `no CA "${record.caId}"` },
    );
  }

  getProfile(name: string): Promise<ScepProfileRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('scep_profiles')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('name', '=', name)
        .executeTakeFirst();
      return row === undefined ? undefined : profileFromRow(row);
    });
  }

  listProfiles(): Promise<ScepProfileRecord[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('scep_profiles')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('name')
        .execute();
      return rows.map(profileFromRow);
    });
  }

  putChallenge(record: ChallengeRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      hash: record.hash,
      profile: record.profile,
      device_id: orNull(record.deviceId),
      subject: record.subject,
      san_email: orNull(record.sanEmail),
      san_upn: orNull(record.sanUpn),
      created_at: toMs(record.createdAt, 'createdAt'),
      expires_at: toMs(record.expiresAt, 'expiresAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('scep_challenges').values(row).execute();
      },
      { conflict: 'this challenge already exists', missing: `no SCEP profile "${record.profile}"` },
    );
  }

  withdrawChallenges(deviceId: string, profilePrefix: string | undefined, at: Date): Promise<number> {
    return guarded(async () => {
      let query = this.#db
        .updateTable('scep_challenges')
        .set({ used_at: toMs(at, 'at') })
        .where('tenant_id', '=', this.#tenantId)
        .where('device_id', '=', deviceId)
        .where('used_at', 'is', null);
      // A prefix compared exactly (no LIKE wildcards from the data): the profile's first characters.
      if (profilePrefix !== undefined) query = query.where((eb) => eb(eb.fn('substr', ['profile', eb.val(1), eb.val(profilePrefix.length)]), '=', profilePrefix));
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  consumeChallenge(hash: string, now: Date): Promise<ConsumeResult> {
    const at = toMs(now, 'now');
    return guarded(async () => {
      // One conditional UPDATE ... RETURNING: of concurrent consumers exactly one sees the row change.
      const taken = await this.#db
        .updateTable('scep_challenges')
        .set({ used_at: at })
        .where('tenant_id', '=', this.#tenantId)
        .where('hash', '=', hash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .returningAll()
        .executeTakeFirst();
      if (taken !== undefined) return { outcome: 'ok', challenge: challengeFromRow(taken) };
      // Why it failed, for the SCEP failInfo and the log; a used challenge stays "used" once it has expired too.
      const found = await this.#db
        .selectFrom('scep_challenges')
        .select(['used_at'])
        .where('tenant_id', '=', this.#tenantId)
        .where('hash', '=', hash)
        .executeTakeFirst();
      if (found === undefined) return { outcome: 'unknown' };
      return { outcome: found.used_at === null ? 'expired' : 'used' };
    });
  }

  peekChallenge(hash: string, now: Date): Promise<ConsumeResult> {
    const at = toMs(now, 'now');
    return guarded(async () => {
      const row = await this.#db.selectFrom('scep_challenges').selectAll().where('tenant_id', '=', this.#tenantId).where('hash', '=', hash).executeTakeFirst();
      if (row === undefined) return { outcome: 'unknown' };
      if (row.used_at !== null) return { outcome: 'used' };
      return row.expires_at > at ? { outcome: 'ok', challenge: challengeFromRow(row) } : { outcome: 'expired' };
    });
  }

  recordTransaction(record: ScepTransactionRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      transaction_id: record.transactionId,
      profile: record.profile,
      message_type: record.messageType,
      requester: record.requester,
      outcome: record.outcome,
      fail_info: orNull(record.failInfo),
      serial_hex: orNull(record.serialHex),
      created_at: toMs(record.createdAt, 'createdAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('scep_transactions').values(row).execute();
      },
      { missing: 'the tenant does not exist' },
    );
  }

  /** The latest record with this transaction id. */
  getTransaction(transactionId: string): Promise<ScepTransactionRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('scep_transactions')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('transaction_id', '=', transactionId)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : transactionFromRow(row);
    });
  }

  /** Newest first. */
  listTransactions(options: { readonly limit?: number } = {}): Promise<ScepTransactionRecord[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('scep_transactions')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('created_at', 'desc')
        .orderBy('seq', 'desc')
        .limit(pageSize(options.limit))
        .execute();
      return rows.map(transactionFromRow);
    });
  }
}

function profileFromRow(row: Selectable<ScepProfilesTable>): ScepProfileRecord {
  return { name: row.name, caId: row.ca_id, template: JSON.parse(row.template), createdAt: fromMs(row.created_at) };
}

function challengeFromRow(row: Selectable<ScepChallengesTable>): ChallengeRecord {
  return {
    hash: row.hash,
    profile: row.profile,
    deviceId: orUndefined(row.device_id),
    subject: row.subject,
    sanEmail: orUndefined(row.san_email),
    sanUpn: orUndefined(row.san_upn),
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
  };
}

const MESSAGE_TYPES = ['PKCSReq', 'RenewalReq', 'GetCertInitial', 'GetCert', 'GetCRL'] as const;
const OUTCOMES = ['success', 'failure', 'pending'] as const;

function oneOf<T extends string>(allowed: readonly T[], value: string, column: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`scep_transactions.${column} holds an unknown value`);
}

function transactionFromRow(row: Selectable<ScepTransactionsTable>): ScepTransactionRecord {
  return {
    transactionId: row.transaction_id,
    profile: row.profile,
    messageType: oneOf(MESSAGE_TYPES, row.message_type, 'message_type'),
    requester: row.requester,
    outcome: oneOf(OUTCOMES, row.outcome, 'outcome'),
    failInfo: orUndefined(row.fail_info),
    serialHex: orUndefined(row.serial_hex),
    createdAt: fromMs(row.created_at),
  };
}
