/**
 * Crash-safe replacement of one small file shared by processes on one
 * device: the keystore (docs/delivery.md), written by the Company Portal
 * agent while the mail side reads it.
 *
 * - Readers never lock. A write goes to a temporary file in the same
 *   directory, is fsync'd, and is renamed over the target (POSIX rename is
 *   atomic), then the directory is fsync'd. A reader's open() names either
 *   the old inode or the new one, and keeps reading the inode it opened, so
 *   it always sees one whole version. A crash before the rename leaves the
 *   previous version in place and a temporary file that the next writer
 *   removes.
 * - Writers serialise with a lock file created with O_EXCL, holding the
 *   holder's pid, host and a random token. Node has no flock(), so a lock
 *   whose holder died stays behind; it is stale when its pid no longer
 *   exists on this host, when it is older than `staleMs` (pid reuse, or a
 *   holder on another host of a shared file system), or when it is empty
 *   and older than a moment (a crash between create and write). A stale
 *   lock is broken by renaming it aside (only one breaker wins the rename)
 *   and checking that what was moved is the lock judged stale; if it is not
 *   (a live lock replaced it in between), it is put back.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyfleetError } from '../errors.ts';

/** Points in a write where a test may stop the process to prove crash safety. */
export type WriteStage = 'locked' | 'temp-written' | 'renamed';

export interface AtomicWriteOptions {
  /** File mode of the result (default 0600). */
  readonly mode?: number;
  /** Called at each stage; tests kill the process there. */
  readonly onStage?: (stage: WriteStage) => void;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** The whole file, refused past `maxBytes` before anything is read. ENOENT is passed through. */
export function readFileLimited(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `${path} is ${size} bytes, more than the ${maxBytes} allowed`);
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, out, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === size ? out : out.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}

/** Temporary files of `path` look like `.<name>.<pid>.<random>.tmp` in its directory. */
function tempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/**
 * Replaces `path` with `data` atomically (see the file comment). Call it
 * holding the file's lock: temporary files left by crashed writers are
 * removed here, which is only safe when no other writer is running.
 */
export function writeFileAtomic(path: string, data: Uint8Array, options: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  removeOrphanTemps(path);
  const temp = join(dir, `${tempPrefix(path)}${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', options.mode ?? 0o600);
  try {
    try {
      // The mode given to open() is masked by the umask; set it exactly.
      fchmodSync(fd, options.mode ?? 0o600);
      let at = 0;
      while (at < data.length) at += writeSync(fd, data, at, data.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    options.onStage?.('temp-written');
    renameSync(temp, path);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
    throw e;
  }
  options.onStage?.('renamed');
  fsyncDirectory(dir);
}

function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function removeOrphanTemps(path: string): void {
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    try {
      unlinkSync(join(dirname(path), name));
    } catch {
      // gone already
    }
  }
}

// ------------------------------------------------------------------ the lock

export interface FileLockOptions {
  /** Give up waiting after this long (default 10 s): KF_CONFLICT. */
  readonly timeoutMs?: number;
  /** A lock older than this is stale whoever holds it (default 30 s; writes take milliseconds). */
  readonly staleMs?: number;
}

interface LockRecord {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  readonly at: number;
}

interface LockState {
  readonly record: LockRecord | undefined;
  readonly ino: number;
  readonly mtimeMs: number;
}

/** An empty or unreadable lock younger than this may be one being written right now. */
const EMPTY_LOCK_GRACE_MS = 2000;

function readLock(path: string): LockState | undefined {
  let text: string;
  let ino: number;
  let mtimeMs: number;
  try {
    const st = statSync(path);
    ino = st.ino;
    mtimeMs = st.mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
  let record: LockRecord | undefined;
  try {
    const v = JSON.parse(text) as Partial<LockRecord>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.token === 'string' && typeof v.at === 'number') {
      record = { pid: v.pid, host: v.host, token: v.token, at: v.at };
    }
  } catch {
    // torn or empty: judged by its age
  }
  return { record, ino, mtimeMs };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return errno(e) === 'EPERM';
  }
}

function isStale(state: LockState, staleMs: number, now: number): boolean {
  const r = state.record;
  if (!r) return now - state.mtimeMs > EMPTY_LOCK_GRACE_MS;
  if (now - r.at > staleMs) return true;
  return r.host === hostname() && r.pid !== process.pid && !processAlive(r.pid);
}

function sameLock(a: LockState, b: LockState | undefined): boolean {
  return b !== undefined && a.ino === b.ino && a.record?.token === b.record?.token;
}

/** Moves a stale lock out of the way, unless what is there is no longer the lock judged stale. */
function breakLock(path: string, judged: LockState): void {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  const moved = readLock(aside);
  if (!sameLock(judged, moved)) {
    // A live lock took the stale one's place between our look and our rename: give it back.
    try {
      linkSync(aside, path);
    } catch {
      // Someone acquired meanwhile; the moved holder finds its token gone at commit (holdsLock).
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // already gone
  }
}

/** A held lock on one file; release() is idempotent. */
export class FileLock {
  readonly path: string;
  readonly token: string;
  #released = false;

  private constructor(path: string, token: string) {
    this.path = path;
    this.token = token;
  }

  static async acquire(path: string, options: FileLockOptions = {}): Promise<FileLock> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const staleMs = options.staleMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    const token = randomBytes(12).toString('base64url');
    let delay = 2;
    for (;;) {
      let fd: number | undefined;
      try {
        fd = openSync(path, 'wx', 0o600);
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      if (fd !== undefined) {
        try {
          writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), token, at: Date.now() } satisfies LockRecord));
        } finally {
          closeSync(fd);
        }
        return new FileLock(path, token);
      }
      const state = readLock(path);
      if (state === undefined) continue;
      const now = Date.now();
      if (isStale(state, staleMs, now)) {
        breakLock(path, state);
        continue;
      }
      if (now >= deadline) {
        const who = state.record ? `process ${state.record.pid} on ${state.record.host}` : 'another process';
        throw new KeyfleetError('KF_CONFLICT', `${path} is held by ${who}; gave up after ${timeoutMs} ms`, { detail: 'locked' });
      }
      await sleep(Math.min(delay, Math.max(1, deadline - now)));
      delay = Math.min(delay * 2, 50);
    }
  }

  /** True while the lock file is still ours (it is not, if it was judged stale and broken). */
  holds(): boolean {
    return !this.#released && readLock(this.path)?.record?.token === this.token;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (readLock(this.path)?.record?.token !== this.token) return;
    try {
      unlinkSync(this.path);
    } catch {
      // gone already
    }
  }
}
