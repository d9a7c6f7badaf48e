/**
 * What the agent remembers between runs besides the keystore: where its
 * service is, who it is, the ETag of the last state it fully applied, what
 * it has reported, and reports not yet acknowledged (the outbox, written
 * before they are sent, so a crash or a lost connection loses none).
 *
 * `<state dir>/agent.json`, replaced atomically under `agent.json.lock`
 * (atomic-file.ts), mode 0600. It holds no secret: keys live only in the
 * keystore beside it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import type { ReportItem } from '../protocol/device-api.ts';
import { FileLock, readFileLimited, writeFileAtomic } from './atomic-file.ts';

export const AGENT_STATE_FILE = 'agent.json';
const FORMAT = 'keyfleet-device-agent';
const MAX_STATE_BYTES = 4 * 1024 * 1024;

/**
 * managed: enrolled and working. retiring/wiping: everything managed is
 * gone from the keystore and the retire or wipe report is in the outbox.
 * retired/wiped: the service acknowledged it; the identity is gone too.
 */
export type AgentManagementState = 'managed' | 'retiring' | 'wiping' | 'retired' | 'wiped';

export interface AgentState {
  readonly serverUrl: string;
  readonly deviceId: string;
  readonly userId: string;
  readonly deviceName: string;
  readonly portalUrl: string | undefined;
  readonly enrolledAt: string;
  readonly managementState: AgentManagementState;
  /** The ETag of the last desired state applied with nothing left to do. */
  readonly etag: string | undefined;
  readonly lastCheckinAt: string | undefined;
  /** The last check-in answered with a whole desired state (not 304). */
  readonly lastFullCheckinAt: string | undefined;
  readonly lastChangeAt: string | undefined;
  /** Per policy, the status last reported and the settings it was for. */
  readonly policyReports: Readonly<Record<string, string>>;
  readonly outbox: readonly ReportItem[];
}

export class AgentStateFile {
  readonly dir: string;
  readonly path: string;

  constructor(dir: string) {
    this.dir = dir;
    this.path = join(dir, AGENT_STATE_FILE);
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  /** The state now; KF_NOT_FOUND when the directory holds no enrolled device. */
  read(): AgentState {
    let bytes: Buffer;
    try {
      bytes = readFileLimited(this.path, MAX_STATE_BYTES);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyfleetError('KF_NOT_FOUND', `no enrolled device in ${this.dir} (run keyfleet device enroll first)`);
      throw e;
    }
    return decode(bytes, this.path);
  }

  /** Writes a first state (enrolment), creating the directory 0700. */
  async create(state: AgentState): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    await this.#locked(() => {
      writeFileAtomic(this.path, encode(state));
    });
  }

  /** Read-modify-write under the lock; returns the state written. */
  async update(change: (s: AgentState) => AgentState): Promise<AgentState> {
    return this.#locked(() => {
      const next = change(this.read());
      writeFileAtomic(this.path, encode(next));
      return next;
    });
  }

  async #locked<T>(fn: () => T): Promise<T> {
    const lock = await FileLock.acquire(`${this.path}.lock`);
    try {
      return fn();
    } finally {
      lock.release();
    }
  }
}

function encode(s: AgentState): Buffer {
  return Buffer.from(`${JSON.stringify({ format: FORMAT, version: 1, ...s }, null, 2)}\n`, 'utf8');
}

const STATES: readonly AgentManagementState[] = ['managed', 'retiring', 'wiping', 'retired', 'wiped'];

function decode(bytes: Buffer, path: string): AgentState {
  const bad = (why: string) => new KeyfleetError('KF_USAGE', `${path} is not an agent state file (${why})`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || doc['format'] !== FORMAT || doc['version'] !== 1) throw bad('unknown format');
  const str = (k: string): string => {
    if (typeof doc[k] !== 'string') throw bad(`${k} missing`);
    return doc[k];
  };
  const opt = (k: string): string | undefined => (doc[k] === undefined || doc[k] === null ? undefined : str(k));
  const record = <T>(k: string, ok: (v: unknown) => v is T): Record<string, T> => {
    const v = doc[k] ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every(ok)) throw bad(`${k} malformed`);
    return v as Record<string, T>;
  };
  const isString = (v: unknown): v is string => typeof v === 'string';
  const managementState = str('managementState') as AgentManagementState;
  if (!STATES.includes(managementState)) throw bad('managementState unknown');
  const outbox = doc['outbox'] ?? [];
  if (!Array.isArray(outbox) || !outbox.every((i) => typeof i === 'object' && i !== null && typeof (i as ReportItem).id === 'string' && typeof (i as ReportItem).state === 'string')) throw bad('outbox malformed');
  return {
    serverUrl: str('serverUrl'),
    deviceId: str('deviceId'),
    userId: str('userId'),
    deviceName: str('deviceName'),
    portalUrl: opt('portalUrl'),
    enrolledAt: str('enrolledAt'),
    managementState,
    etag: opt('etag'),
    lastCheckinAt: opt('lastCheckinAt'),
    lastFullCheckinAt: opt('lastFullCheckinAt'),
    lastChangeAt: opt('lastChangeAt'),
    policyReports: record('policyReports', isString),
    outbox: outbox as ReportItem[],
  };
}
