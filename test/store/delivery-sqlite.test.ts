/**
 * The delivery conformance on SQLite, and claims from several processes on one file (the server's workers):
 * within a process the shared connection serialises claimers, across processes only the write transaction
 * does. Run with `--claim-child <dataDir> <tenant>`, this file is one such process: it claims until the
 * queue is empty and prints the ids it got.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '../../src/store/open.ts';
import { sqliteBackend } from './backends.ts';
import { deliveryStoreConformance, requestRecord } from './conformance-delivery.ts';
import { deviceRecord } from './conformance-devices.ts';
import { at } from './fixtures.ts';

const CHILD = '--claim-child';

if (process.argv[2] === CHILD) {
  const [dataDir, tenantId, startAt] = process.argv.slice(3);
  if (dataDir === undefined || tenantId === undefined || startAt === undefined) throw new Error(`usage: ${CHILD} dataDir tenant startAtMs`);
  const store = await openStore({ dataDir, env: {} });
  try {
    const tenant = store.forTenant(tenantId);
    const got: string[] = [];
    // Start together, so that the processes contend.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
    for (;;) {
      const hashes = Array.from({ length: 3 }, () => randomBytes(32).toString('hex'));
      const batch = await tenant.delivery.claimDeliveryRequests(`c-${process.pid}`, 3, hashes, at(60_000), at(0));
      if (batch.length === 0) break;
      got.push(...batch.map((r) => r.id));
      // Working on the batch: SQLite's busy handler polls, so without a pause the holder would take the lock straight back.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.stdout.write(JSON.stringify(got));
  } finally {
    await store.close();
  }
} else {
  deliveryStoreConformance(sqliteBackend());

  test('four processes claiming from one SQLite file never get the same request, and none fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyfleet-claims-'));
    try {
      const dataDir = join(dir, 'data');
      const n = 150;
      const store = await openStore({ dataDir, env: {} });
      try {
        await store.ensureTenant('t', 'T');
        const t = store.forTenant('t');
        await t.devices.putDevice(deviceRecord('d1'));
        await t.transaction(async (tx) => {
          for (let i = 0; i < n; i++) await tx.delivery.ensureDeliveryRequest(requestRecord(`r${i}`, 'd1', `p${i}`));
        });
      } finally {
        await store.close();
      }
      const file = new URL(import.meta.url).pathname;
      const run = promisify(execFile);
      const startAt = String(Date.now() + 2000);
      const outputs = await Promise.all(Array.from({ length: 4 }, async () => (await run(process.execPath, [file, CHILD, dataDir, 't', startAt])).stdout));
      const perProcess = outputs.map((o) => JSON.parse(o) as string[]);
      const claimed = perProcess.flat();
      assert.equal(claimed.length, n);
      assert.equal(new Set(claimed).size, n);
      // They did contend: more than one process got work.
      assert.ok(perProcess.filter((ids) => ids.length > 0).length > 1, `claims per process: ${perProcess.map((ids) => ids.length).join(', ')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
