/**
 * The commands as scripts use them: `keyfleet admin token create` on the
 * database, then `keyfleet users|groups|audit` against a listening server
 * through KEYFLEET_URL and KEYFLEET_TOKEN; errors as one line and a non-zero exit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { announceFirstAdmin } from '../../src/cli/admin.ts';
import { buildServer } from '../../src/http/server.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { describeRun, run, type RunResult } from '../support/exec.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

describe('keyfleet users|groups|audit|admin', () => {
  let dir: string;
  let dataDir: string;
  let store: Store;
  let app: FastifyInstance;
  let url: string;
  let adminToken: string;

  const keyfleet = (args: string[], env: Record<string, string> = {}): Promise<RunResult> =>
    run(node, [bin, ...args], {
      env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_DATABASE_URL: '', KEYFLEET_URL: url, KEYFLEET_TOKEN: adminToken, ...env },
      timeoutMs: 30_000,
    });
  const ok = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    const r = await keyfleet(args, env);
    assert.equal(r.status, 0, describeRun(r));
    return r.stdout.toString('utf8');
  };
  const fails = async (args: string[], status: number, code: string, env: Record<string, string> = {}): Promise<void> => {
    const r = await keyfleet(args, env);
    assert.equal(r.status, status, describeRun(r));
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^keyfleet: ${code}: `));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyfleet-cli-admin-'));
    dataDir = join(dir, 'data');
    store = await openStore({ dataDir, env: {} });
    let printed = '';
    assert.equal(await announceFirstAdmin(store, (line) => (printed += line)), true);
    adminToken = /^(kf_\S+)$/m.exec(printed)![1]!;
    // The second start prints nothing: the token was shown once.
    assert.equal(await announceFirstAdmin(store, (line) => (printed += line)), false);
    app = await buildServer({ admin: { store } });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('users and groups round-trip through the commands, as tables and as JSON', async () => {
    const alice = JSON.parse(await ok(['users', 'create', '--upn', 'alice@contoso.com', '--display-name', 'Alice Adams', '--mail', 'alice@contoso.com', '--exchange-online', '--json']));
    assert.equal(alice.isExchangeOnline, true);
    const table = await ok(['users', 'list']);
    const [header, row] = table.trimEnd().split('\n');
    assert.match(header!, /^id\s+userPrincipalName\s+displayName\s+mail\s+isExchangeOnline\s+accountEnabled$/);
    assert.match(row!, /alice@contoso\.com\s+Alice Adams\s+alice@contoso\.com\s+true\s+true$/);
    assert.equal(JSON.parse(await ok(['users', 'show', 'ALICE@contoso.com', '--json'])).id, alice.id);
    await ok(['users', 'update', 'alice@contoso.com', '--disable']);
    assert.equal(JSON.parse(await ok(['users', 'show', alice.id, '--json'])).accountEnabled, false);

    const sales = JSON.parse(await ok(['groups', 'create', '--name', 'Sales', '--description', 'EMEA sales', '--json']));
    const all = JSON.parse(await ok(['groups', 'create', '--name', 'All', '--json']));
    await ok(['groups', 'add-member', sales.id, '--user', 'alice@contoso.com']);
    await ok(['groups', 'add-member', all.id, '--group', sales.id]);
    const transitive = JSON.parse(await ok(['groups', 'members', all.id, '--transitive', '--json']));
    assert.deepEqual(transitive, [
      { type: 'group', id: sales.id },
      { type: 'user', id: alice.id },
    ]);
    await fails(['groups', 'add-member', sales.id, '--group', all.id], 1, 'KF_GROUP_CYCLE');
    await ok(['groups', 'remove-member', sales.id, '--user', alice.id]);
    assert.deepEqual(JSON.parse(await ok(['groups', 'members', sales.id, '--json'])), []);
    await ok(['users', 'delete', 'alice@contoso.com']);
    await fails(['users', 'show', 'alice@contoso.com'], 1, 'KF_NOT_FOUND');
    await ok(['groups', 'delete', all.id]);

    const audit = await ok(['audit', 'list']);
    assert.match(audit, /group\.member\.add/);
    assert.match(await ok(['audit', 'verify']), /^audit chain intact: \d+ entries, head [0-9a-f]{64}$/m);
    assert.match(await ok(['audit', 'verify', '--data', dataDir]), /^audit chain intact/m);
  });

  test('admin token create prints a secret once; a help-desk token cannot write', async () => {
    const out = await ok(['admin', 'token', 'create', '--role', 'helpDesk', '--name', 'service desk', '--data', dataDir]);
    const secret = out.trim();
    assert.match(secret, /^kf_[A-Za-z0-9_-]{43}$/);
    await ok(['users', 'list'], { KEYFLEET_TOKEN: secret });
    await fails(['users', 'create', '--upn', 'x@contoso.com', '--display-name', 'X'], 1, 'KF_FORBIDDEN', { KEYFLEET_TOKEN: secret });
    const listed = JSON.parse(await ok(['admin', 'token', 'list', '--data', dataDir, '--json']));
    assert.ok(listed.some((t: { name: string }) => t.name === 'service desk'));
    assert.ok(!JSON.stringify(listed).includes(secret));
    await fails(['admin', 'token', 'create', '--role', 'root', '--name', 'x', '--data', dataDir], 2, 'KF_USAGE');
  });

  test('errors: a wrong token, no URL, an unreachable service, bad options', async () => {
    await fails(['users', 'list'], 1, 'KF_UNAUTHENTICATED', { KEYFLEET_TOKEN: 'kf_' + 'x'.repeat(43) });
    await fails(['users', 'list'], 2, 'KF_USAGE', { KEYFLEET_URL: '' });
    await fails(['users', 'list'], 1, 'KF_SERVICE_UNREACHABLE', { KEYFLEET_URL: 'http://127.0.0.1:1' });
    await fails(['users', 'create', '--upn', 'not-an-address', '--display-name', 'X'], 2, 'KF_USAGE');
    await fails(['groups', 'frobnicate'], 2, 'KF_USAGE');
  });
});
