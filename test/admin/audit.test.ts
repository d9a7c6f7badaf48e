/** The audit chain detects a row edited, deleted or forged directly in the SQLite file. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { verifyAuditChain } from '../../src/directory/audit.ts';
import { json, startHarness, type Harness } from './support.ts';

describe('audit chain verification', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    const user = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'frank@x.example', displayName: 'Frank' } }));
    await h.request('PATCH', `/api/v1/users/${user['id']}`, { body: { displayName: 'Frank F.' } });
    await h.request('POST', '/api/v1/groups', { body: { displayName: 'G' } });
  });
  after(() => h.close());

  const tamper = (statement: string, ...params: (string | number)[]) => {
    const db = new DatabaseSync(h.dbPath);
    try {
      db.prepare(statement).run(...params);
    } finally {
      db.close();
    }
  };

  test('an intact chain verifies', async () => {
    const result = await verifyAuditChain(h.store.forTenant('a'));
    assert.equal(result.ok, true);
    assert.equal(result.entries, 6); // three tokens made by the harness, then three changes
  });

  test('an edited "after" is found at its entry, through the API and directly', async () => {
    tamper(`update audit_events set after_json = replace(after_json, 'Frank F.', 'Mallory') where tenant_id = 'a' and seq = 5`);
    const result = await verifyAuditChain(h.store.forTenant('a'));
    assert.deepEqual(result, { ok: false, entries: 4, brokenAt: 5, reason: 'hash-mismatch' });
    const viaApi = json(await h.request('GET', '/api/v1/auditEvents/verification'));
    assert.equal(viaApi['ok'], false);
    assert.equal(viaApi['brokenAt'], 5);
  });

  test('a re-hashed forgery breaks the next link; a deleted entry leaves a gap', async () => {
    const db = new DatabaseSync(h.dbPath);
    const row = db.prepare(`select hash from audit_events where tenant_id = 'a' and seq = 5`).get() as { hash: string };
    db.close();
    // The forger recomputes entry 5's hash with a made-up value: entry 6 still names the old one.
    tamper(`update audit_events set hash = ? where tenant_id = 'a' and seq = 5`, 'f'.repeat(64));
    let result = await verifyAuditChain(h.store.forTenant('a'));
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.brokenAt, 5);
    tamper(`update audit_events set hash = ? where tenant_id = 'a' and seq = 5`, row.hash);
    tamper(`delete from audit_events where tenant_id = 'a' and seq = 3`);
    result = await verifyAuditChain(h.store.forTenant('a'));
    assert.deepEqual(result, { ok: false, entries: 2, brokenAt: 4, reason: 'missing-entry' });
  });

  test("the other tenant's chain is unaffected", async () => {
    assert.equal((await verifyAuditChain(h.store.forTenant('b'))).ok, true);
  });
});
