/** Tokens and roles (src/directory/access.ts): shape, hashing at rest, authentication, the first-start token. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_OPERATOR, allows, authenticate, bootstrapFirstAdmin, createToken, revokeToken } from '../../src/directory/access.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';

describe('admin API tokens', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyfleet-access-'));
    store = await openStore({ dataDir: dir, env: {} });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first start creates the tenant and one administrator token, once', async () => {
    const first = await bootstrapFirstAdmin(store, 'default', 'Default');
    assert.ok(first);
    assert.equal(first.token.role, 'administrator');
    assert.ok(await store.getTenant('default'));
    assert.equal(await bootstrapFirstAdmin(store, 'default', 'Default'), undefined);
    const principal = await authenticate(store, first.secret);
    assert.deepEqual(principal, { tenantId: 'default', id: first.token.id, name: 'first administrator', role: 'administrator' });
  });

  test('secrets are kf_ + 32 random bytes; only their SHA-256 is stored', async () => {
    await store.ensureTenant('t', 'T');
    const tenant = store.forTenant('t');
    const a = await createToken(tenant, LOCAL_OPERATOR, 'a', 'helpDesk');
    const b = await createToken(tenant, LOCAL_OPERATOR, 'b', 'helpDesk');
    assert.match(a.secret, /^kf_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a.secret.slice(3), 'base64url').length, 32);
    assert.notEqual(a.secret, b.secret);
    const stored = await tenant.access.getToken(a.token.id);
    assert.equal(stored?.secretHash, createHash('sha256').update(a.secret).digest('hex'));
    assert.ok(!JSON.stringify(await tenant.audit.list()).includes(a.secret));
  });

  test('unknown, malformed and revoked tokens are all KF_UNAUTHENTICATED; lastUsed is recorded', async () => {
    const tenant = store.forTenant('t');
    const c = await createToken(tenant, LOCAL_OPERATOR, 'c', 'policyManager');
    const when = new Date('2031-01-01T00:00:00Z');
    assert.equal((await authenticate(store, c.secret, when)).role, 'policyManager');
    assert.deepEqual((await tenant.access.getToken(c.token.id))?.lastUsedAt, when);
    await revokeToken(tenant, LOCAL_OPERATOR, c.token.id);
    for (const secret of [c.secret, undefined, '', 'kf_short', `kf_${'A'.repeat(43)}`, `${c.secret} `]) {
      await assert.rejects(authenticate(store, secret), (e) => isKeyfleetError(e, 'KF_UNAUTHENTICATED'));
    }
    await assert.rejects(revokeToken(tenant, LOCAL_OPERATOR, c.token.id), (e) => isKeyfleetError(e, 'KF_CONFLICT'));
  });

  test('roles: only administrators write the directory or manage tokens; the help desk only reads', () => {
    assert.ok(allows('administrator', 'directory:write') && allows('administrator', 'tokens:manage'));
    assert.ok(allows('policyManager', 'directory:read') && !allows('policyManager', 'directory:write') && !allows('policyManager', 'tokens:manage'));
    assert.ok(allows('helpDesk', 'directory:read') && !allows('helpDesk', 'directory:write') && !allows('helpDesk', 'audit:read'));
  });

  test('resources: the administrator and the policy manager read and write them; the help desk only reads', () => {
    for (const role of ['administrator', 'policyManager'] as const) assert.ok(allows(role, 'resources:read') && allows(role, 'resources:write'), role);
    assert.ok(allows('helpDesk', 'resources:read') && !allows('helpDesk', 'resources:write'));
  });
});
