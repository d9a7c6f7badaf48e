/**
 * The Company Portal agent: one enrolled iOS/iPadOS device (docs/delivery.md
 * "The agent and the mail side"). It enrols with a one-time token and a
 * P-256 identity key made here, checks in (on push, on a timer, or when
 * asked), applies what it is given to the keystore it shares with the mail
 * side, and reports back.
 *
 * Its state directory holds the keystore (`keystore`, with its key file
 * `keystore.key`, 0600) and `agent.json` (agent-state.ts: the service URL,
 * the device id, the last ETag, the report outbox). Check-ins are one at a
 * time per directory (`checkin.lock`), so a `keyfleet device checkin` beside
 * a running portal waits instead of enrolling the same certificate twice.
 *
 * Retire and wipe: every managed certificate, root and app configuration is
 * deleted first, then reported; once the service acknowledges, the device
 * identity goes too (the device is no longer enrolled). A wipe also deletes
 * the contacts the mail side collected — the user's data on the device —
 * and so leaves an empty keystore; a retire leaves them, as retiring a
 * personal device leaves personal data.
 */
import { generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { DesiredState, EnrollRequest, NotificationItem, ReportItem } from '../protocol/device-api.ts';
import { encodeCertificationRequest } from '../scep/csr.ts';
import { decodeCertificate } from '../x509/certificate.ts';
import { encodeName } from '../x509/name.ts';
import { FileLock } from './atomic-file.ts';
import { type AppliedItem, type FailedItem, type PendingItem, applyDesiredState } from './agent-apply.ts';
import { type AgentManagementState, type AgentState, AgentStateFile } from './agent-state.ts';
import { DeviceApiClient, type HttpOptions, MAX_REPORT_ITEMS, requestEnrolment } from './api-client.ts';
import { type AgentListener, type ListenOptions, listen } from './agent-listen.ts';
import { DeviceKeystore, type DeviceIdentity, type KeystoreKeySource, defaultKeyFilePath } from './keystore.ts';
import { keyMatches } from './keystore-data.ts';
import type { PortalProgress } from './portal.ts';
import type { ScepEnrolmentOptions } from './scep-enrol.ts';

const generateKeyPair = promisify(generateKeyPairCb);

export type { AgentListener, ListenEvent, ListenOptions } from './agent-listen.ts';
export type { AppliedItem, FailedItem, PendingItem } from './agent-apply.ts';

/** Report, re-check: a check-in ends after this many rounds even if reports keep moving the ETag. */
const MAX_ROUNDS = 4;
const DEFAULT_FULL_CHECKIN_MS = 24 * 3_600_000;
/** A check-in that enrols a 4096-bit key over a slow link takes a while; a crashed one's lock is broken by pid. */
const CHECKIN_LOCK = { timeoutMs: 5 * 60_000, staleMs: 15 * 60_000 };

export interface DeviceFacts {
  readonly deviceName: string;
  readonly model: string;
  readonly operatingSystem: 'iOS' | 'iPadOS';
  readonly osVersion: string;
  readonly serialNumber?: string;
  /** Where this device's portal page listens (http://127.0.0.1:PORT), for links in notification mail. */
  readonly portalUrl?: string;
}

export interface DeviceAgentOptions {
  readonly stateDir: string;
  /** The landing page's model; progress is reported there as it happens. */
  readonly progress?: PortalProgress;
  /** Default: the key file `<stateDir>/keystore.key`. */
  readonly keySource?: KeystoreKeySource;
  readonly http?: HttpOptions;
  readonly scep?: ScepEnrolmentOptions;
  readonly clock?: () => Date;
  /**
   * A check-in skips If-None-Match when the last whole state is older than this (default a day): the
   * service notices renewal due only when it reconciles, which a 304 skips.
   */
  readonly fullCheckinIntervalMs?: number;
}

export interface ReportOutcome {
  readonly item: ReportItem;
  readonly ok: boolean;
  readonly code?: string;
  readonly detail?: string;
}

export interface CheckinSummary {
  /** unchanged: 304; applied: a desired state was applied; retired/wiped: the device carried that out. */
  readonly result: 'unchanged' | 'applied' | 'retired' | 'wiped';
  readonly rounds: number;
  readonly etag: string | undefined;
  readonly managementState: AgentManagementState;
  readonly installed: readonly AppliedItem[];
  readonly removed: readonly AppliedItem[];
  readonly failed: readonly FailedItem[];
  readonly pending: readonly PendingItem[];
  readonly reports: readonly ReportOutcome[];
}

export interface AgentStatus {
  readonly stateDir: string;
  readonly state: AgentState;
  readonly identity: { readonly thumbprint: string; readonly notAfter: string } | undefined;
  readonly keystore: { readonly generation: number; readonly signing: number; readonly encryption: number; readonly trustedRoots: number; readonly contacts: number; readonly appConfigurations: readonly string[] };
}

export class DeviceAgent {
  readonly stateDir: string;
  readonly keystorePath: string;
  readonly progress: PortalProgress | undefined;
  readonly stateFile: AgentStateFile;
  readonly #options: DeviceAgentOptions;
  readonly #keySource: KeystoreKeySource;
  #keystore: DeviceKeystore | undefined;
  #running: Promise<CheckinSummary> | undefined;

  constructor(options: DeviceAgentOptions) {
    this.#options = options;
    this.stateDir = options.stateDir;
    this.keystorePath = join(options.stateDir, 'keystore');
    this.#keySource = options.keySource ?? { kind: 'key-file', path: defaultKeyFilePath(this.keystorePath) };
    this.progress = options.progress;
    this.stateFile = new AgentStateFile(options.stateDir);
  }

  #now(): Date {
    return this.#options.clock?.() ?? new Date();
  }

  async keystore(): Promise<DeviceKeystore> {
    this.#keystore ??= await DeviceKeystore.open(this.keystorePath, this.#keySource);
    return this.#keystore;
  }

  state(): AgentState {
    return this.stateFile.read();
  }

  /**
   * Enrols this device: a P-256 key made here, a CSR over it, the one-time token; the identity the
   * service issues goes into the keystore (created on first enrolment) and the service URL into
   * agent.json. A device already enrolled and managed is refused (KF_CONFLICT); a retired or wiped
   * one may enrol again.
   */
  async enroll(serverUrl: string, enrollmentToken: string, facts: DeviceFacts): Promise<AgentState> {
    if (this.stateFile.exists()) {
      const current = this.stateFile.read();
      if (current.managementState !== 'retired' && current.managementState !== 'wiped') {
        throw new KeyfleetError('KF_CONFLICT', `${this.stateDir} already holds enrolled device ${current.deviceId}`);
      }
    }
    const key = (await generateKeyPair('ec', { namedCurve: 'P-256' })).privateKey;
    // The service ignores the CSR's subject; it names the device in the certificate itself.
    const csr = encodeCertificationRequest({ subject: encodeName([['CN', facts.deviceName.slice(0, 64)]]) }, key);
    const request: EnrollRequest = {
      enrollmentToken,
      csr: Buffer.from(csr).toString('base64'),
      deviceName: facts.deviceName,
      operatingSystem: facts.operatingSystem,
      osVersion: facts.osVersion,
      model: facts.model,
      ...(facts.serialNumber === undefined ? {} : { serialNumber: facts.serialNumber }),
      ...(facts.portalUrl === undefined ? {} : { portalUrl: facts.portalUrl }),
    };
    const answer = await requestEnrolment(serverUrl, request, this.#options.http);
    const certificate = decodeCertificate(Buffer.from(answer.certificate, 'base64'));
    if (!keyMatches(certificate, key)) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', 'the service returned an identity certificate for another key');
    const caCertificates = answer.caCertificates.map((c) => decodeCertificate(Buffer.from(c, 'base64')));
    const keystore = await this.#openOrCreateKeystore();
    await keystore.update((d) => d.setIdentity({ deviceId: answer.deviceId, certificate, key, caCertificates }));
    const state: AgentState = {
      serverUrl: serverUrl.replace(/\/+$/, ''),
      deviceId: answer.deviceId,
      userId: answer.userId,
      deviceName: facts.deviceName,
      portalUrl: facts.portalUrl,
      enrolledAt: this.#now().toISOString(),
      managementState: 'managed',
      etag: undefined,
      lastCheckinAt: undefined,
      lastFullCheckinAt: undefined,
      lastChangeAt: undefined,
      policyReports: {},
      outbox: [],
    };
    await this.stateFile.create(state);
    return state;
  }

  async #openOrCreateKeystore(): Promise<DeviceKeystore> {
    try {
      return await this.keystore();
    } catch (e) {
      if (!isKeyfleetError(e, 'KF_NOT_FOUND')) throw e;
      this.#keystore = await DeviceKeystore.create(this.keystorePath, this.#keySource);
      return this.#keystore;
    }
  }

  async #identity(): Promise<DeviceIdentity> {
    const identity = (await (await this.keystore()).snapshot()).identity;
    if (identity === undefined) throw new KeyfleetError('KF_NOT_FOUND', `the keystore in ${this.stateDir} holds no device identity (enrol again)`);
    return identity;
  }

  async #client(state: AgentState): Promise<{ api: DeviceApiClient; identity: DeviceIdentity }> {
    const identity = await this.#identity();
    return { identity, api: this.#api(state, identity.key) };
  }

  #api(state: AgentState, key: KeyObject): DeviceApiClient {
    return new DeviceApiClient({ serverUrl: state.serverUrl, deviceId: state.deviceId, key, ...this.#options.http, clock: () => this.#now().getTime() });
  }

  /** Check in now; concurrent calls in this process share one run, other processes wait for the lock. */
  checkin(options: { readonly full?: boolean } = {}): Promise<CheckinSummary> {
    this.#running ??= this.#checkinLocked(options).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #checkinLocked(options: { readonly full?: boolean }): Promise<CheckinSummary> {
    this.stateFile.read(); // not enrolled: say so, rather than fail to make the lock file
    const lock = await FileLock.acquire(join(this.stateDir, 'checkin.lock'), CHECKIN_LOCK);
    try {
      return await this.#checkin(options.full === true);
    } finally {
      lock.release();
    }
  }

  async #checkin(full: boolean): Promise<CheckinSummary> {
    let state = this.stateFile.read();
    if (state.managementState === 'retired' || state.managementState === 'wiped') {
      throw new KeyfleetError('KF_CONFLICT', `device ${state.deviceId} was ${state.managementState}; enrol it again to use it`);
    }
    const acc = { installed: [] as AppliedItem[], removed: [] as AppliedItem[], failed: [] as FailedItem[], pending: [] as PendingItem[], reports: [] as ReportOutcome[] };
    const summary = (result: CheckinSummary['result'], rounds: number): CheckinSummary => {
      const s = this.stateFile.read();
      return { result, rounds, etag: s.etag, managementState: s.managementState, ...acc };
    };
    const { api, identity } = await this.#client(state);
    const keystore = await this.keystore();
    const queue = async (item: ReportItem) => {
      state = await this.stateFile.update((s) => ({ ...s, outbox: [...s.outbox, item] }));
    };

    if (state.managementState === 'retiring' || state.managementState === 'wiping') {
      return summary(await this.#finishRetire(api, state.managementState === 'wiping' ? 'wiped' : 'retired', acc.reports), 0);
    }
    await this.#flush(api, acc.reports);

    const tried = new Set<string>();
    const lastFull = state.lastFullCheckinAt === undefined ? 0 : Date.parse(state.lastFullCheckinAt);
    if (this.#now().getTime() - lastFull >= (this.#options.fullCheckinIntervalMs ?? DEFAULT_FULL_CHECKIN_MS)) full = true;
    let result: CheckinSummary['result'] = 'unchanged';
    let rounds = 0;
    while (rounds < MAX_ROUNDS) {
      rounds++;
      state = this.stateFile.read();
      const answer = await api.checkin(full && rounds === 1 ? undefined : state.etag);
      const at = this.#now().toISOString();
      if (answer.status === 304) {
        await this.stateFile.update((s) => ({ ...s, lastCheckinAt: at }));
        break;
      }
      result = 'applied';
      const desired = answer.state;
      if (desired.deviceId !== state.deviceId) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', 'the service answered with the desired state of another device');
      if (desired.managementState === 'retirePending' || desired.managementState === 'wipePending') {
        return summary(await this.#retire(api, desired, acc), rounds);
      }
      const outcome = await applyDesiredState({ api, keystore, identity, progress: this.progress, state, scep: this.#options.scep ?? {}, tried, queue }, desired);
      acc.installed.push(...outcome.installed);
      acc.removed.push(...outcome.removed);
      acc.failed.push(...outcome.failed);
      const before = acc.reports.length;
      // The service hands back the ETag of this state with the reports applied, unless something else moved it.
      const reported = await this.#flush(api, acc.reports, answer.etag);
      const moved = acc.reports.slice(before).some((r) => r.ok);
      // Anything not yet on the device keeps the next check-in a full one, so it is tried again.
      const complete = outcome.pending.length === 0 && outcome.failed.length === 0;
      if (!moved || reported !== undefined) acc.pending.push(...outcome.pending);
      await this.stateFile.update((s) => ({
        ...s,
        etag: complete ? (moved ? reported : answer.etag) : undefined,
        policyReports: outcome.policyReports,
        lastCheckinAt: at,
        lastFullCheckinAt: at,
        lastChangeAt: outcome.installed.length + outcome.removed.length > 0 ? at : s.lastChangeAt,
      }));
      // Applied reports moved the device's ETag: unless the service named the new one, the next round reads
      // what the service says now.
      if (!moved || reported !== undefined) break;
    }
    return summary(result, rounds);
  }

  /**
   * Sends the outbox in order; each batch leaves it once answered. With `basedOn`, the ETag of the check-in
   * the reports answer, it returns the device's ETag after them when the service could name it (every
   * batch applied whole and nothing else moved the state), else undefined.
   */
  async #flush(api: DeviceApiClient, outcomes: ReportOutcome[], basedOn?: string): Promise<string | undefined> {
    let etag = basedOn;
    for (let sent = 0; ; sent++) {
      const batch = this.stateFile.read().outbox.slice(0, MAX_REPORT_ITEMS);
      if (batch.length === 0) return sent === 0 ? undefined : etag;
      const answer = await api.report(batch, etag);
      const { results } = answer;
      etag = answer.etag;
      batch.forEach((item, i) => {
        const r = results[i]!;
        outcomes.push(r.ok ? { item, ok: true } : { item, ok: false, code: r.code, detail: r.detail });
      });
      await this.stateFile.update((s) => ({ ...s, outbox: s.outbox.slice(batch.length) }));
    }
  }

  /** Deletes everything managed, then reports each removal and the retire or wipe itself. */
  async #retire(api: DeviceApiClient, desired: DesiredState, acc: { removed: AppliedItem[]; reports: ReportOutcome[] }): Promise<'retired' | 'wiped'> {
    const mode = desired.managementState === 'wipePending' ? 'wiped' : 'retired';
    const keystore = await this.keystore();
    const { result: held } = await keystore.update((d) => {
      const h = { signing: new Set(d.signing.map((s) => s.certificate.thumbprint)), encryption: new Set(d.encryption.map((e) => e.certificate.thumbprint)), count: 0 };
      h.count = d.clearManaged();
      if (mode === 'wiped') for (const c of [...d.contacts]) h.count += d.remove(c.certificate.thumbprint, ['contact']);
      return h;
    });
    const state = this.stateFile.read();
    const reports: ReportItem[] = [];
    for (const r of desired.remove) {
      const onDevice = held.signing.has(r.thumbprint) || held.encryption.has(r.thumbprint);
      reports.push({ kind: r.kind, id: r.id, state: onDevice ? 'removedFromCollection' : 'deleted', thumbprint: r.thumbprint });
      acc.removed.push({ kind: r.kind === 'scep' ? 'signing' : 'encryption', id: r.id, thumbprint: r.thumbprint, label: `Certificate ${r.thumbprint.slice(0, 8)}` });
    }
    reports.push({ kind: 'device', id: state.deviceId, state: mode });
    await this.stateFile.update((s) => ({ ...s, managementState: mode === 'wiped' ? 'wiping' : 'retiring', etag: undefined, outbox: [...s.outbox, ...reports] }));
    if (this.progress) this.progress.upsertItems(this.progress.snapshot().items.filter((i) => i.state !== 'removed').map((i) => ({ ...i, state: 'removed' as const })));
    return this.#finishRetire(api, mode, acc.reports);
  }

  /** Sends what is left of the retire reports; once the service has the device's own report, the identity goes. */
  async #finishRetire(api: DeviceApiClient, mode: 'retired' | 'wiped', outcomes: ReportOutcome[]): Promise<'retired' | 'wiped'> {
    try {
      const before = outcomes.length;
      await this.#flush(api, outcomes);
      const own = outcomes.slice(before).find((o) => o.item.kind === 'device');
      if (own !== undefined && !own.ok) throw new KeyfleetError('KF_CONFLICT', `the service refused the ${mode} report: ${own.detail ?? own.code ?? ''}`);
    } catch (e) {
      // An earlier attempt's report arrived but its answer did not: the service now refuses the device.
      if (!isKeyfleetError(e, 'KF_UNAUTHENTICATED')) throw e;
    }
    const keystore = await this.keystore();
    await keystore.update((d) => {
      if (d.identity !== undefined) d.remove(d.identity.certificate.thumbprint, ['device-identity']);
    });
    await this.stateFile.update((s) => ({ ...s, managementState: mode, etag: undefined, outbox: [], policyReports: {}, lastChangeAt: this.#now().toISOString() }));
    return mode;
  }

  /** The in-app notification list (newest first), also shown on the portal page. */
  async notifications(): Promise<NotificationItem[]> {
    const { api } = await this.#client(this.stateFile.read());
    const list = await api.notifications();
    for (const n of list) this.progress?.addNotification({ id: n.id, title: n.title, body: n.body, createdAt: n.createdDateTime });
    return list;
  }

  async markNotificationRead(id: string): Promise<void> {
    const { api } = await this.#client(this.stateFile.read());
    await api.markRead(id);
  }

  /** Subscribes to the service's push channel and checks in on change and on a timer (agent-listen.ts). */
  listen(options: ListenOptions = {}): AgentListener {
    const state = this.stateFile.read();
    return listen(
      {
        events: async (signal, hooks) => (await this.#client(this.stateFile.read())).api.events({ signal, ...hooks }),
        checkin: () => this.checkin(),
        currentEtag: () => this.stateFile.read().etag,
        enrolled: () => {
          const s = this.stateFile.read().managementState;
          return s !== 'retired' && s !== 'wiped';
        },
        progress: this.progress,
        deviceId: state.deviceId,
      },
      options,
    );
  }

  async status(): Promise<AgentStatus> {
    const state = this.stateFile.read();
    const snapshot = await (await this.keystore()).snapshot();
    return {
      stateDir: this.stateDir,
      state,
      identity: snapshot.identity === undefined ? undefined : { thumbprint: snapshot.identity.certificate.thumbprint, notAfter: snapshot.identity.certificate.notAfter.toISOString() },
      keystore: {
        generation: snapshot.generation,
        signing: snapshot.signing.length,
        encryption: snapshot.encryption.length,
        trustedRoots: snapshot.trustedRoots.length,
        contacts: snapshot.contacts.length,
        appConfigurations: snapshot.appConfigurations.map((a) => a.bundleId),
      },
    };
  }
}
