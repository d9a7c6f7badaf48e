/**
 * Issued certificates by requester (src/store/ca.ts ListIssuedOptions.requester): a managed device's SCEP
 * challenges record the device as requester, so retiring the device finds — and revokes — every
 * certificate enrolled on its challenges, including one another device presented.
 */
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export function issuedRequester(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createIndex('issued_certificates_requester').on('issued_certificates').columns(['tenant_id', 'ca_id', 'requester', 'serial_hex']).execute();
    },
  };
}
