/**
 * The keystore shared by processes, as the agent (writer) and the mail
 * side (reader) share it: real child processes running this same file in
 * "child" mode write, read, hold the lock, or die at a chosen point of a
 * write (SIGKILL, no cleanup). Every version a reader sees must be whole
 * (its counter equals its generation - 1), no increment may be lost, and
 * after any crash the previous or the next version opens and the next
 * writer proceeds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isKeyfleetError } from '../../src/errors.ts';
import { FileLock } from '../../src/device/atomic-file.ts';
import { DeviceKeystore, type KeystoreDraft, type KeystoreKeySource, type KeystoreSnapshot, type WriteStage, defaultKeyFilePath } from '../../src/device/keystore.ts';

const SELF = fileURLToPath(import.meta.url);
const BUNDLE = 'test.counter';
const source = (path: string): KeystoreKeySource => ({ kind: 'key-file', path: defaultKeyFilePath(path) });

function counterOf(s: { readonly appConfigurations: KeystoreSnapshot['appConfigurations'] }): number {
  const v = s.appConfigurations.find((a) => a.bundleId === BUNDLE)?.settings[0]?.appConfigKeyValue;
  return v === undefined ? 0 : Number(v);
}

function increment(d: KeystoreDraft): void {
  d.setAppConfiguration({ bundleId: BUNDLE, settings: [{ appConfigKey: 'counter', appConfigKeyType: 'integerType', appConfigKeyValue: String(counterOf(d) + 1) }] });
}

// ------------------------------------------------------------------ child mode

async function child(mode: string, path: string, arg: string | undefined): Promise<void> {
  if (mode === 'write') {
    const ks = await DeviceKeystore.open(path, source(path));
    process.stdout.write('ready\n');
    for (let i = 0; i < Number(arg); i++) await ks.update(increment);
    return;
  }
  if (mode === 'read') {
    // Reads until the stop file appears; every version must be whole and never go back.
    const ks = await DeviceKeystore.open(path, source(path));
    let reads = 0;
    let last = 0;
    while (!existsSync(arg!)) {
      const s = await ks.snapshot();
      const c = counterOf(s);
      if (c !== s.generation - 1) throw new Error(`torn version: counter ${c} at generation ${s.generation}`);
      if (c < last) throw new Error(`went back from ${last} to ${c}`);
      last = c;
      reads++;
    }
    process.stdout.write(JSON.stringify({ reads, last }));
    return;
  }
  if (mode === 'crash') {
    const stage = arg as WriteStage;
    const ks = await DeviceKeystore.open(path, source(path), { onWriteStage: (s) => (s === stage ? process.kill(process.pid, 'SIGKILL') : undefined) });
    await ks.update(increment);
    return;
  }
  if (mode === 'hold') {
    await FileLock.acquire(`${path}.lock`);
    process.stdout.write('ready\n');
    await sleep(60_000);
  }
}

if (process.argv[2] === 'child') {
  await child(process.argv[3]!, process.argv[4]!, process.argv[5]).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
  process.exit(0);
}

// ------------------------------------------------------------------ tests

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function start(mode: string, path: string, arg?: string): { readonly done: Promise<Exit>; readonly pid: number; readonly started: Promise<void> } {
  const p = spawn(process.execPath, [SELF, 'child', mode, path, ...(arg === undefined ? [] : [arg])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markStarted: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  p.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    if (stdout.includes('ready\n')) markStarted();
  });
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Exit>((resolve) => p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, pid: p.pid!, started };
}

let dir: string;
let n = 0;
async function freshKeystore(): Promise<{ path: string; ks: DeviceKeystore }> {
  const path = join(dir, `shared-${++n}.kfks`);
  return { path, ks: await DeviceKeystore.create(path, source(path)) };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyfleet-keystore-mp-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('processes sharing one keystore', () => {
  test('two writers and a reader: no increment lost, every read a whole version', async () => {
    const { path, ks } = await freshKeystore();
    const stop = join(dir, `stop-${n}`);
    const reader = start('read', path, stop);
    const writers = [start('write', path, '40'), start('write', path, '40')];
    const results = await Promise.all(writers.map((w) => w.done));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    writeFileSync(stop, '');
    const read = await reader.done;
    assert.equal(read.code, 0, read.stderr);
    const { reads } = JSON.parse(read.stdout) as { reads: number };
    assert.ok(reads > 0);
    const s = await ks.snapshot();
    assert.equal(counterOf(s), 80);
    assert.equal(s.generation, 81);
    assert.ok(!existsSync(`${path}.lock`), 'the lock was left behind');
  });

  for (const [stage, survives] of [['locked', 'previous'], ['temp-written', 'previous'], ['renamed', 'next']] as const) {
    test(`a writer killed at "${stage}" leaves the ${survives} version readable, and the next writer recovers the lock`, async () => {
      const { path, ks } = await freshKeystore();
      await ks.update(increment);
      const died = await start('crash', path, stage).done;
      assert.equal(died.signal, 'SIGKILL', died.stderr);
      assert.ok(existsSync(`${path}.lock`), 'the dead writer should have left its lock');
      const reopened = await DeviceKeystore.open(path, source(path));
      const seen = await reopened.snapshot();
      assert.equal(counterOf(seen), survives === 'previous' ? 1 : 2);
      const started = Date.now();
      const { snapshot } = await reopened.update(increment);
      assert.ok(Date.now() - started < 5000, 'the stale lock was not recovered promptly');
      assert.equal(counterOf(snapshot), counterOf(seen) + 1);
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(`.shared-${n}.kfks.`)), [], 'a temporary file was left behind');
      assert.ok(!existsSync(`${path}.lock`));
    });
  }

  test('writers killed at random moments of a write loop never leave an unreadable keystore', async () => {
    const { path } = await freshKeystore();
    let killedInsideAWrite = 0;
    for (let round = 0; round < 5; round++) {
      const w = start('write', path, '1000');
      await w.started;
      await sleep(30 + round * 37);
      process.kill(w.pid, 'SIGKILL');
      await w.done;
      // Nearly all of the loop's time is spent holding the lock: a lock left behind shows the kill landed mid-write.
      if (existsSync(`${path}.lock`)) killedInsideAWrite++;
      const ks = await DeviceKeystore.open(path, source(path));
      const s = await ks.snapshot();
      assert.equal(counterOf(s), s.generation - 1);
    }
    assert.ok(killedInsideAWrite > 0, 'no kill landed inside a write');
    const ks = await DeviceKeystore.open(path, source(path));
    const before = counterOf(await ks.snapshot());
    assert.equal(counterOf((await ks.update(increment)).snapshot), before + 1);
  });

  test('a live holder makes writers wait and then give up with KF_CONFLICT; once it dies its lock is recovered', async () => {
    const { path, ks } = await freshKeystore();
    const holder = start('hold', path);
    await holder.started;
    const quick = await DeviceKeystore.open(path, source(path), { lock: { timeoutMs: 300 } });
    await assert.rejects(quick.update(increment), (e: unknown) => isKeyfleetError(e, 'KF_CONFLICT') && e.detail === 'locked');
    // Readers do not wait for writers.
    assert.equal(counterOf(await quick.snapshot()), 0);
    process.kill(holder.pid, 'SIGKILL');
    await holder.done;
    assert.equal(counterOf((await ks.update(increment)).snapshot), 1);
  });

  test('a lock older than staleMs, or empty and older than a moment, is broken', async () => {
    const { path, ks } = await freshKeystore();
    // pid 1 always exists: only its age makes this lock stale.
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'x', at: Date.now() - 120_000 }));
    assert.equal(counterOf((await ks.update(increment)).snapshot), 1);
    writeFileSync(`${path}.lock`, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    assert.equal(counterOf((await ks.update(increment)).snapshot), 2);
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'y', at: Date.now() }));
    const quick = await DeviceKeystore.open(path, source(path), { lock: { timeoutMs: 200 } });
    await assert.rejects(quick.update(increment), (e: unknown) => isKeyfleetError(e, 'KF_CONFLICT'));
    rmSync(`${path}.lock`);
  });
});
