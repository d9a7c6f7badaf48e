/**
 * `keyfleet demo` as a newcomer runs it: the real command in a child process.
 * The narrated run must tell the whole story in numbered steps, print the
 * admin's table and leave no temporary directory behind; the --json run must
 * report the story's facts, and with --data those facts are checked again in
 * what the run left: the devices' keystores and the CA's records.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ISSUING_CA_ID } from '../../src/ca/authority.ts';
import { DeviceAgent } from '../../src/device/agent.ts';
import { type RunResult, describeRun, run } from '../support/exec.ts';
import { repoRoot } from '../support/keyfleet.ts';
import { tempDir, withTenant } from './support.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
/** The promise: well under a minute on these machines. A run that takes longer is killed and fails. */
const LIMIT_MS = 60_000;

interface Count {
  name: string;
  trustedRoots: number;
  signing: number;
  encryption: number;
  signingSerial?: string;
}

interface DemoJson {
  ok: boolean;
  seconds: number;
  service: string;
  dataDir: string | null;
  devices: (Count & { user: string; deviceId: string })[];
  signingSerials: string[];
  mail: { outcome: string; encrypted: boolean; signatureValid: boolean; signer: string; oldMessageDecryptedWith: string; oldestCertificate: string };
  unassigned: Count[];
  retired: { name: string; deviceId: string; managementState: string; signingSerial: string };
  ocsp: Record<string, string>;
  summary: { name: string; deviceId: string; managementState: string; policy: string; certificates: Record<string, number> }[];
}

describe('keyfleet demo', () => {
  const tmp = tempDir('demo');
  after(() => tmp.cleanup());

  // TMPDIR: the demo's own temporary directory lands where the test can see whether it was removed.
  const demo = (args: readonly string[], tmpdir: string): Promise<RunResult> =>
    run(node, [bin, 'demo', ...args], { cwd: repoRoot, env: { TMPDIR: tmpdir, NODE_COMPILE_CACHE: join(tmp.path, 'compile-cache'), KEYFLEET_DATABASE_URL: '' }, timeoutMs: LIMIT_MS });

  test('narrates the story in numbered steps, shows the admin’s table, exits 0 and removes its temporary directory', async () => {
    const own = tmp.sub('narrated');
    const r = await demo([], own);
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(r.stderr, '', describeRun(r));
    const out = r.stdout.toString('utf8');
    const numbers = [...out.matchAll(/^ ?(\d+)\. \S/gm)].map((m) => Number(m[1]));
    assert.ok(numbers.length >= 20, out);
    assert.deepEqual(numbers, numbers.map((_, i) => i + 1), 'steps numbered 1, 2, 3, … in order');
    for (const line of out.split('\n').filter((l) => /^ ?\d+\. /.test(l))) assert.ok(line.length <= 130, `a short line: ${line}`);
    assert.match(out, /Started Keyfleet at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /Carol's iPhone checked in: nothing/);
    assert.match(out, /revoked/);
    assert.match(out, /^DEVICE +USER +STATE +POLICY +CERTIFICATES$/m);
    assert.match(out, /^Alice's iPad +Alice +retired /m);
    assert.match(out, /^Done in \d+(\.\d)? s\./m);
    assert.deepEqual(readdirSync(own).filter((n) => n.startsWith('keyfleet-demo-')), [], 'the temporary directory is gone');
  });

  test('--json reports the story’s facts, and with --data they hold in the data it leaves', async () => {
    const data = tmp.sub('kept');
    const r = await demo(['--json', '--data', data], tmp.sub('json'));
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(r.stderr, '', describeRun(r));
    const facts = JSON.parse(r.stdout.toString('utf8')) as DemoJson;
    assert.equal(facts.ok, true);
    assert.ok(facts.seconds > 0 && facts.seconds < 60, `${facts.seconds} s`);

    // Four devices in Sales with the roots, a signing certificate each and their user's encryption history; Carol's none.
    const byName = new Map(facts.devices.map((d) => [d.name, d]));
    assert.deepEqual([...byName.keys()].sort(), ['alice-ipad', 'alice-iphone', 'bob-ipad', 'bob-iphone', 'carol-iphone']);
    for (const name of ['alice-iphone', 'alice-ipad', 'bob-iphone', 'bob-ipad']) {
      const d = byName.get(name)!;
      assert.deepEqual([d.trustedRoots, d.signing, d.encryption], [2, 1, name.startsWith('bob') ? 3 : 1], name);
    }
    const carol = byName.get('carol-iphone')!;
    assert.deepEqual([carol.trustedRoots, carol.signing, carol.encryption], [0, 0, 0]);
    assert.equal(facts.signingSerials.length, 4);
    assert.equal(new Set(facts.signingSerials).size, 4, 'four different signing certificates');

    // Mail: Alice to Bob verified and encrypted; the old message opened with Bob's oldest key.
    assert.equal(facts.mail.outcome, 'verified');
    assert.equal(facts.mail.encrypted, true);
    assert.equal(facts.mail.signatureValid, true);
    assert.equal(facts.mail.signer, 'alice@example.com');
    assert.equal(facts.mail.oldMessageDecryptedWith, facts.mail.oldestCertificate);

    // Bob left Sales: both his devices emptied. Alice's iPad retired. OCSP: revoked for those three, good for her iPhone.
    assert.deepEqual(facts.unassigned.map((u) => [u.name, u.signing, u.encryption]).sort(), [['bob-ipad', 0, 0], ['bob-iphone', 0, 0]]);
    assert.equal(facts.retired.name, 'alice-ipad');
    assert.equal(facts.retired.managementState, 'retired');
    assert.equal(facts.retired.signingSerial, byName.get('alice-ipad')!.signingSerial);
    assert.deepEqual(facts.ocsp, { 'alice-iphone': 'good', 'alice-ipad': 'revoked', 'bob-iphone': 'revoked', 'bob-ipad': 'revoked' });
    const rows = new Map(facts.summary.map((s) => [s.name, s]));
    assert.equal(rows.size, 5);
    assert.equal(rows.get('alice-ipad')!.managementState, 'retired');
    assert.equal(rows.get('alice-iphone')!.certificates['installed'], 2);
    assert.equal(rows.get('bob-iphone')!.certificates['installed'], undefined);

    // What the run left behind says the same.
    assert.equal(facts.dataDir, data);
    const held = async (name: string) => {
      const s = await (await new DeviceAgent({ stateDir: join(data, 'devices', name) }).keystore()).snapshot();
      return { signing: s.signing.map((x) => x.certificate.serialHex), encryption: s.encryption.length, roots: s.trustedRoots.length };
    };
    assert.deepEqual(await held('alice-iphone'), { signing: [byName.get('alice-iphone')!.signingSerial], encryption: 1, roots: 2 });
    for (const name of ['bob-iphone', 'bob-ipad', 'alice-ipad', 'carol-iphone']) assert.deepEqual(await held(name), { signing: [], encryption: 0, roots: 0 }, name);
    await withTenant(data, async (t) => {
      const issued = await Promise.all(facts.signingSerials.map((s) => t.ca.getIssued(ISSUING_CA_ID, s)));
      assert.ok(issued.every((c) => c !== undefined), 'the CA issued every signing certificate');
      const revoked = issued.filter((c) => c!.status === 'revoked').map((c) => c!.serialHex);
      assert.deepEqual(revoked.sort(), ['alice-ipad', 'bob-iphone', 'bob-ipad'].map((n) => byName.get(n)!.signingSerial!).sort());
    });
  });

  test('refuses a --data directory that is not empty, before starting anything', async () => {
    const data = tmp.sub('busy');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'keep-me.txt'), 'mine');
    const r = await demo(['--data', data], tmp.sub('busy-tmp'));
    assert.equal(r.status, 2, describeRun(r));
    assert.match(r.stderr, /^keyfleet: KF_USAGE: --data .* is not empty[^\n]*\n$/);
    assert.equal(r.stdout.length, 0);
    assert.deepEqual(readdirSync(data), ['keep-me.txt']);
    assert.equal(existsSync(join(data, 'keyfleet.db')), false);
  });
});
