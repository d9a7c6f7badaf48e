/**
 * Measures CaStore.listRevoked with 100,000 revoked certificates (plus
 * 20,000 good ones beside them) on SQLite and, when reachable, PostgreSQL.
 * Not part of `npm test` (seeding takes a while):
 *   node test/store/list-revoked-timing.ts [count]
 */
import { performance } from 'node:perf_hooks';
import { postgresBackend, sqliteBackend } from './backends.ts';
import { T0, caRecord, issuedRecord, serial } from './fixtures.ts';
import type { StoreBackend } from './suite.ts';

const revokedCount = Number(process.argv[2] ?? 100_000);
const goodCount = Math.floor(revokedCount / 5);

async function measure(backend: StoreBackend): Promise<void> {
  if (backend.skip !== undefined) {
    console.log(`${backend.name}: skipped (${backend.skip})`);
    return;
  }
  await backend.setUp();
  const store = await backend.open();
  try {
    await store.ensureTenant('bench', 'Bench');
    const t = store.forTenant('bench');
    await t.ca.putCa(caRecord('issuing'));
    const seedStart = performance.now();
    const der = new Uint8Array(1200);
    await t.transaction(async (tx) => {
      for (let i = 0; i < revokedCount + goodCount; i++) {
        const revoked = i % 6 !== 5;
        await tx.ca.recordIssued(
          issuedRecord('issuing', serial(i), {
            certificateDer: der,
            ...(revoked ? { status: 'revoked', revokedAt: T0, revocationReason: i % 3 === 0 ? undefined : 1 } : {}),
          }),
        );
      }
    });
    const seeded = performance.now() - seedStart;
    const times: number[] = [];
    let n = 0;
    for (let run = 0; run < 5; run++) {
      const start = performance.now();
      n = (await t.ca.listRevoked('issuing')).length;
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    console.log(
      `${backend.name}: listRevoked → ${n} entries: best ${times[0]!.toFixed(0)} ms, median ${times[2]!.toFixed(0)} ms ` +
        `(seeding ${revokedCount + goodCount} rows through recordIssued in one transaction: ${(seeded / 1000).toFixed(1)} s)`,
    );
  } finally {
    await store.close();
    await backend.tearDown();
  }
}

await measure(sqliteBackend());
await measure(await postgresBackend());
