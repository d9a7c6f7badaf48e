/** CaStore (src/store/ca.ts) on Kysely, for one tenant. */
import type { Kysely, Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import type {
  CaRecord,
  CaStore,
  CrlRecord,
  IssuedCertificateRecord,
  ListIssuedOptions,
  RevokedEntry,
} from '../ca.ts';
import { guarded } from './errors.ts';
import type { CasTable, Database, IssuedCertificatesTable } from './schema.ts';
import { inTransaction } from './transaction.ts';
import {
  bytes,
  decodeChain,
  encodeChain,
  fromMs,
  optionalBytes,
  optionalDate,
  optionalMs,
  orNull,
  orUndefined,
  pageSize,
  toMs,
} from './values.ts';

/** Lower-case hex as ca.ts specifies; anything else would break uniqueness and cursor order. */
const SERIAL_HEX = /^[0-9a-f]{1,128}$/;

export class KyselyCaStore implements CaStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db;
    this.#tenantId = tenantId;
  }

  getCa(id: string): Promise<CaRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('cas')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined ? undefined : caFromRow(row);
    });
  }

  listCas(): Promise<CaRecord[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('cas')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(caFromRow);
    });
  }

  putCa(record: CaRecord): Promise<void> {
    const row = this.#caRow(record);
    return guarded(
      async () => {
        await this.#db.insertInto('cas').values(row).execute();
      },
      { conflict: `a CA with id "${record.id}" already exists`, missing: 'the tenant does not exist' },
    );
  }

  replaceCa(record: CaRecord): Promise<void> {
    const { tenant_id, id, ...changes } = this.#caRow(record);
    return guarded(async () => {
      const result = await this.#db.updateTable('cas').set(changes).where('tenant_id', '=', tenant_id).where('id', '=', id).executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new KeyfleetError('KF_NOT_FOUND', `no CA with id "${id}"`);
    });
  }

  #caRow(record: CaRecord) {
    return {
      tenant_id: this.#tenantId,
      id: record.id,
      role: record.role,
      certificate_der: record.certificateDer,
      chain_der: encodeChain(record.chainDer),
      key_ref: record.keyRef,
      sealed_key: orNull(record.sealedKey),
      created_at: toMs(record.createdAt, 'createdAt'),
    };
  }

  recordIssued(record: IssuedCertificateRecord): Promise<void> {
    return guarded(
      async () => {
        if (!SERIAL_HEX.test(record.serialHex)) {
          throw new KeyfleetError('KF_USAGE', 'serial number must be lower-case hex');
        }
        if ((record.status === 'revoked') !== (record.revokedAt !== undefined)) {
          throw new KeyfleetError('KF_USAGE', 'a certificate has a revocation time exactly when it is revoked');
        }
        await this.#db
          .insertInto('issued_certificates')
          .values({
            tenant_id: this.#tenantId,
            ca_id: record.caId,
            serial_hex: record.serialHex,
            subject: record.subject,
            email_addresses: JSON.stringify(record.emailAddresses),
            profile: orNull(record.profile),
            requester: orNull(record.requester),
            not_before: toMs(record.notBefore, 'notBefore'),
            not_after: toMs(record.notAfter, 'notAfter'),
            issued_at: toMs(record.issuedAt, 'issuedAt'),
            certificate_der: record.certificateDer,
            revoked_at: optionalMs(record.revokedAt, 'revokedAt'),
            revocation_reason: record.status === 'revoked' ? orNull(record.revocationReason) : null,
          })
          .execute();
      },
      {
        conflict: `serial ${record.serialHex} is already recorded for CA "${record.caId}"`,
        missing: `no CA "${record.caId}"`,
      },
    );
  }

  getIssued(caId: string, serialHex: string): Promise<IssuedCertificateRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('issued_certificates')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('ca_id', '=', caId)
        .where('serial_hex', '=', serialHex)
        .executeTakeFirst();
      return row === undefined ? undefined : issuedFromRow(row);
    });
  }

  listIssued(caId: string, options: ListIssuedOptions = {}): Promise<IssuedCertificateRecord[]> {
    return guarded(async () => {
      let query = this.#db
        .selectFrom('issued_certificates')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('ca_id', '=', caId);
      if (options.status === 'good') query = query.where('revoked_at', 'is', null);
      if (options.status === 'revoked') query = query.where('revoked_at', 'is not', null);
      if (options.afterSerialHex !== undefined) query = query.where('serial_hex', '>', options.afterSerialHex);
      if (options.requester !== undefined) query = query.where('requester', '=', options.requester);
      const rows = await query.orderBy('serial_hex').limit(pageSize(options.limit)).execute();
      return rows.map(issuedFromRow);
    });
  }

  revoke(caId: string, serialHex: string, reason: number | undefined, at: Date): Promise<boolean> {
    return guarded(async () => {
      // One conditional UPDATE: of two concurrent revocations exactly one changes the row.
      const result = await this.#db
        .updateTable('issued_certificates')
        .set({ revoked_at: toMs(at, 'at'), revocation_reason: orNull(reason) })
        .where('tenant_id', '=', this.#tenantId)
        .where('ca_id', '=', caId)
        .where('serial_hex', '=', serialHex)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  listRevoked(caId: string): Promise<RevokedEntry[]> {
    return guarded(async () => {
      // Answered from the partial index issued_certificates_revoked alone (migrations/0002_ca.ts): the
      // predicate must stay `revoked_at is not null` for the planner to pick it.
      const rows = await this.#db
        .selectFrom('issued_certificates')
        .select(['serial_hex', 'revoked_at', 'revocation_reason'])
        .where('tenant_id', '=', this.#tenantId)
        .where('ca_id', '=', caId)
        .where('revoked_at', 'is not', null)
        .orderBy('serial_hex')
        .execute();
      const entries: RevokedEntry[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        entries[i] = {
          serialHex: r.serial_hex,
          revokedAt: fromMs(r.revoked_at!),
          reason: orUndefined(r.revocation_reason),
        };
      }
      return entries;
    });
  }

  putCrl(caId: string, build: (crlNumber: bigint) => Omit<CrlRecord, 'caId' | 'crlNumber'>): Promise<CrlRecord> {
    return guarded(() =>
      inTransaction(this.#db, async (tx) => {
        // Incrementing the CA row's counter takes its write lock (PostgreSQL) or the database's (SQLite), so
        // concurrent putCrl calls get consecutive numbers, and a failed build rolls its number back.
        const counter = await tx
          .updateTable('cas')
          .set((eb) => ({ last_crl_number: eb('last_crl_number', '+', 1) }))
          .where('tenant_id', '=', this.#tenantId)
          .where('id', '=', caId)
          .returning('last_crl_number')
          .executeTakeFirst();
        if (counter === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no CA "${caId}"`);
        const crlNumber = BigInt(counter.last_crl_number);
        const built = build(crlNumber);
        const row = {
          crl_number: crlNumber,
          this_update: toMs(built.thisUpdate, 'thisUpdate'),
          next_update: toMs(built.nextUpdate, 'nextUpdate'),
          der: built.der,
        };
        await tx
          .insertInto('crls')
          .values({ tenant_id: this.#tenantId, ca_id: caId, ...row })
          .onConflict((oc) => oc.columns(['tenant_id', 'ca_id']).doUpdateSet(row))
          .execute();
        return { caId, crlNumber, thisUpdate: built.thisUpdate, nextUpdate: built.nextUpdate, der: built.der };
      }),
    );
  }

  getLatestCrl(caId: string): Promise<CrlRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('crls')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('ca_id', '=', caId)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        caId: row.ca_id,
        crlNumber: BigInt(row.crl_number),
        thisUpdate: fromMs(row.this_update),
        nextUpdate: fromMs(row.next_update),
        der: bytes(row.der),
      };
    });
  }
}

function caFromRow(row: Selectable<CasTable>): CaRecord {
  return {
    id: row.id,
    role: row.role === 'root' || row.role === 'ra' || row.role === 'ocsp' ? row.role : 'issuing',
    certificateDer: bytes(row.certificate_der),
    chainDer: decodeChain(bytes(row.chain_der)),
    keyRef: row.key_ref,
    sealedKey: optionalBytes(row.sealed_key),
    createdAt: fromMs(row.created_at),
  };
}

function issuedFromRow(row: Selectable<IssuedCertificatesTable>): IssuedCertificateRecord {
  return {
    caId: row.ca_id,
    serialHex: row.serial_hex,
    subject: row.subject,
    emailAddresses: JSON.parse(row.email_addresses) as string[],
    profile: orUndefined(row.profile),
    requester: orUndefined(row.requester),
    notBefore: fromMs(row.not_before),
    notAfter: fromMs(row.not_after),
    issuedAt: fromMs(row.issued_at),
    certificateDer: bytes(row.certificate_der),
    status: row.revoked_at === null ? 'good' : 'revoked',
    revokedAt: optionalDate(row.revoked_at),
    revocationReason: orUndefined(row.revocation_reason),
  };
}
