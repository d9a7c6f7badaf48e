/**
 * ensureScepStoreProfile (src/delivery/scep-enrolment.ts) from many check-ins at once, on both databases:
 * the first wave after an assignment has every device's transaction creating the same mirrored SCEP profile.
 * One insert wins; the others find it made, and their transactions carry on (on PostgreSQL a refused
 * insert outside a savepoint would have aborted them: "current transaction is aborted").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureScepStoreProfile } from '../../src/delivery/scep-enrolment.ts';
import type { Store } from '../../src/store/store.ts';
import { scepInput } from '../policy/helpers.ts';
import { postgresBackend, sqliteBackend } from '../store/backends.ts';
import type { StoreBackend } from '../store/suite.ts';
import { caRecord, issuedRecord } from '../store/fixtures.ts';

for (const make of [sqliteBackend, postgresBackend]) {
  const backend: StoreBackend = await make();
  describe(`ensureScepStoreProfile on ${backend.name}`, { skip: backend.skip }, () => {
    let store: Store;
    before(async () => {
      await backend.setUp();
      store = await backend.open();
      await store.ensureTenant('t', 'T');
      await store.forTenant('t').ca.putCa(caRecord('issuing'));
    });
    after(async () => {
      await store.close();
      await backend.tearDown();
    });

    it('twelve transactions at once each get the one profile and go on writing', async () => {
      const tenant = store.forTenant('t');
      const profile = scepInput();
      const names = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          tenant.transaction(async (tx) => {
            const name = await ensureScepStoreProfile(tx, 'scep-sign', profile, new Date());
            // A later statement of the same transaction still runs.
            await tx.ca.recordIssued(issuedRecord('issuing', `0${i.toString(16)}`));
            return name;
          }),
        ),
      );
      assert.equal(new Set(names).size, 1);
      assert.ok(await tenant.scep.getProfile(names[0]!));
      assert.equal((await tenant.ca.listIssued('issuing')).length, 12);
    });
  });
}
