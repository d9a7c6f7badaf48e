/**
 * Several processes on one SQLite file (the server and a CLI command): write
 * transactions wait for each other (BEGIN IMMEDIATE, busy_timeout) instead of
 * failing, and a challenge is still consumed exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '../../src/store/open.ts';
import { caRecord, challengeRecord, profileRecord } from './fixtures.ts';

const run = promisify(execFile);

test('four processes race for one challenge on one SQLite file: exactly one gets it, none fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-procs-'));
  try {
    const dataDir = join(dir, 'data');
    const store = await openStore({ dataDir, env: {} });
    try {
      await store.ensureTenant('t', 'T');
      const t = store.forTenant('t');
      await t.ca.putCa(caRecord('issuing'));
      await t.scep.putProfile(profileRecord('default'));
      await t.scep.putChallenge(challengeRecord('race', 'default'));
    } finally {
      await store.close();
    }
    const child = new URL('./consume-child.ts', import.meta.url).pathname;
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, async () => (await run(process.execPath, [child, dataDir, 't', 'race'])).stdout),
    );
    assert.deepEqual(outcomes.sort(), ['ok', 'used', 'used', 'used']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
