/**
 * One simulated device: the agent's protocol (src/device/agent.ts and
 * agent-apply.ts) without its keystore and state files. It uses the agent's
 * own pieces — DeviceApiClient (signed requests, bounded and checked
 * answers), enrolOverScep (GetCACert, GetCACaps, PKCSReq, the CA pinned by
 * fingerprint, the reply checked), AuthEnvelopedData opened with the
 * identity key and the KeyDelivery checked — and keeps what it installed
 * in memory. The keystore re-encrypts a file per change; ten thousand of
 * those on the same two cores would measure the simulator, not the server.
 *
 * A check-in runs as the agent's does: up to four rounds while its reports
 * move the ETag, every item reported once, the ETag kept only when nothing
 * is pending. It starts on a 'changed' push whose version is not the one
 * applied, and on the agent's timer (fleet-child.ts).
 */
import type { KeyObject } from 'node:crypto';
import { DeviceApiClient, retryable } from '../../src/device/api-client.ts';
import { enrolOverScep } from '../../src/device/scep-enrol.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import type { DesiredState, ImportedItem, ReportItem } from '../../src/protocol/device-api.ts';
import { decodeKeyDelivery } from '../../src/protocol/key-delivery.ts';
import { decryptContent, describeEnvelope } from '../../src/smime/cms/enveloped-data.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';

const MAX_ROUNDS = 4;

export interface FleetCounters {
  checkins200: number;
  checkins304: number;
  scepEnrolments: number;
  deliveries: number;
  /** Of those, fetched by id because the check-in did not carry them inline. */
  deliveriesFetched: number;
  reportItems: number;
  reportRefusals: number;
  errors: number;
  /** The first few error messages, for the report. */
  readonly samples: string[];
}

export function newCounters(): FleetCounters {
  return { checkins200: 0, checkins304: 0, scepEnrolments: 0, deliveries: 0, deliveriesFetched: 0, reportItems: 0, reportRefusals: 0, errors: 0, samples: [] };
}

export function noteError(c: FleetCounters, message: string): void {
  c.errors++;
  if (c.samples.length < 8) c.samples.push(message.slice(0, 300));
}

/** Bounds how many devices work at once (check-in sessions), as a connection pool would. */
export class Gate {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.#free = slots;
  }
  async enter(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

export interface LeanDeviceOptions {
  readonly serverUrl: string;
  readonly id: string;
  readonly key: KeyObject;
  readonly certificate: Certificate;
  /** The RSA key its SCEP enrolment certifies (made before the clock). */
  readonly scepKey: KeyObject;
  readonly expectedImported: number;
  readonly timeoutMs: number;
}

export class LeanDevice {
  readonly id: string;
  readonly key: KeyObject;
  readonly #o: LeanDeviceOptions;
  readonly #api: DeviceApiClient;
  etag: string | undefined;
  /** Acknowledged by the service: SCEP state ids, PFX ids, policy ids. */
  readonly #scepDone = new Set<string>();
  readonly #importedDone = new Set<string>();
  readonly #policiesDone = new Set<string>();
  /** Thumbprints of the imported certificates this device holds. */
  readonly #held = new Set<string>();
  #roots = 0;
  #configurations = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #againOnPush = false;
  #announced: string | undefined;
  lastActivity = 0;
  /** The last check-in ended in an error (the service refused or did not answer). */
  failed = false;
  doneAt: number | undefined;

  constructor(options: LeanDeviceOptions) {
    this.#o = options;
    this.id = options.id;
    this.key = options.key;
    this.#api = new DeviceApiClient({ serverUrl: options.serverUrl, deviceId: options.id, key: options.key, timeoutMs: options.timeoutMs });
  }

  get busy(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Starts a check-in, or queues exactly one more behind the one running. `announced` is the version a
   * 'changed' push named: as the agent (agent-listen.ts), a queued check-in is skipped when the check-in
   * before it already brought the device to that version.
   */
  trigger(gate: Gate, counters: FleetCounters, announced?: string): Promise<void> {
    if (announced !== undefined) this.#announced = announced;
    if (this.#running !== undefined) {
      this.#again = true;
      this.#againOnPush = announced !== undefined;
      return this.#running;
    }
    this.#running = (async () => {
      let first = true;
      do {
        const skip = !first && this.#againOnPush && this.#announced === this.etag;
        first = false;
        this.#again = false;
        if (skip) continue;
        await gate.enter();
        try {
          await this.#checkin(counters);
          this.failed = false;
        } catch (e) {
          this.failed = true;
          noteError(counters, `${this.id}: ${e instanceof Error ? e.message : String(e)}`);
        } finally {
          this.lastActivity = Date.now();
          gate.leave();
        }
      } while (this.#again);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #checkin(counters: FleetCounters): Promise<void> {
    const tried = new Set<string>();
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const answer = await this.#api.checkin(this.etag);
      if (answer.status === 304) {
        counters.checkins304++;
        return;
      }
      counters.checkins200++;
      const desired = answer.state;
      const reports: ReportItem[] = [];
      const outcome = { pending: 0, failed: 0 };
      this.#applyRootsAndConfigurations(desired);
      for (const r of desired.remove) reports.push({ kind: r.kind, id: r.id, state: this.#held.delete(r.thumbprint) ? 'removedFromCollection' : 'deleted', thumbprint: r.thumbprint });
      for (const s of desired.scep) {
        if (s.request === undefined || this.#scepDone.has(s.id)) continue;
        if (tried.has(s.id)) {
          outcome.pending++;
          continue;
        }
        tried.add(s.id);
        const r = s.request;
        const result = await enrolOverScep(
          { url: r.url, challenge: r.challenge, subject: r.subject, keySize: r.keySize, caFingerprint: r.caFingerprint, ...(r.sanEmail ? { sanEmail: r.sanEmail } : {}), ...(r.sanUpn ? { sanUpn: r.sanUpn } : {}) },
          { generateKey: () => Promise.resolve(this.#o.scepKey), timeoutMs: this.#o.timeoutMs },
        );
        counters.scepEnrolments++;
        if (result.ok) reports.push({ kind: 'scep', id: s.id, state: 'installed', serialNumber: result.certificate.serialHex, thumbprint: result.certificate.thumbprint });
        else {
          outcome.failed++;
          noteError(counters, `${this.id}: SCEP ${result.state} ${result.errorCode}: ${result.detail}`);
          reports.push({ kind: 'scep', id: s.id, state: result.state, errorCode: result.errorCode });
        }
      }
      for (const item of desired.imported) await this.#applyImported(item, tried, reports, outcome, counters);
      for (const p of desired.policies) if (!p.notApplicable && !this.#policiesDone.has(p.id)) reports.push({ kind: 'policy', id: p.id, state: 'compliant' });

      let moved = false;
      let reported: string | undefined;
      if (reports.length > 0) {
        const { results, etag } = await this.#api.report(reports, answer.etag);
        reported = etag;
        counters.reportItems += reports.length;
        results.forEach((result, i) => {
          const item = reports[i]!;
          if (!result.ok) {
            counters.reportRefusals++;
            noteError(counters, `${this.id}: report ${item.kind} ${item.state} refused: ${result.code} ${result.detail}`);
            return;
          }
          moved = true;
          if (item.state !== 'installed' && item.state !== 'compliant') return;
          if (item.kind === 'scep') this.#scepDone.add(item.id);
          else if (item.kind === 'imported') this.#importedDone.add(item.id);
          else if (item.kind === 'policy') this.#policiesDone.add(item.id);
        });
      }
      // As the agent: the report's answer names the ETag of this state with the reports applied, or the
      // next round reads it.
      this.etag = outcome.pending === 0 && outcome.failed === 0 ? (moved ? reported : answer.etag) : undefined;
      this.#checkDone(desired);
      if (!moved || reported !== undefined) return;
    }
  }

  #applyRootsAndConfigurations(desired: DesiredState): void {
    for (const r of desired.trustedRoots) {
      const certificate = decodeCertificate(Buffer.from(r.certificate, 'base64'));
      if (certificate.thumbprint !== r.thumbprint || certificate.basicConstraints?.cA !== true) throw new Error(`trusted root ${r.thumbprint} is not the CA certificate announced`);
    }
    this.#roots = desired.trustedRoots.length;
    this.#configurations = desired.appConfigurations.filter((a) => a.settings.length > 0 && a.plist.length > 0).length;
  }

  async #applyImported(item: ImportedItem, tried: Set<string>, reports: ReportItem[], outcome: { pending: number; failed: number }, counters: FleetCounters): Promise<void> {
    if (this.#importedDone.has(item.id)) return;
    if (this.#held.has(item.thumbprint)) {
      if (item.state !== 'installed') reports.push({ kind: 'imported', id: item.id, state: 'installed', thumbprint: item.thumbprint });
      return;
    }
    if (item.deliveryId === undefined || tried.has(item.deliveryId)) {
      outcome.pending++;
      return;
    }
    tried.add(item.deliveryId);
    try {
      // As the agent: the payload the check-in carried inline, else fetched by id.
      let encoded = item.payload;
      if (encoded === undefined) {
        const delivery = await this.#api.delivery(item.deliveryId);
        if (delivery.id !== item.deliveryId || delivery.pfxId !== item.pfxId) throw new Error('the delivery is not the one asked for');
        encoded = delivery.payload;
        counters.deliveriesFetched++;
      }
      counters.deliveries++;
      const payload = Buffer.from(encoded, 'base64');
      if (describeEnvelope(payload).contentType !== 'auth-enveloped-data') throw new Error('the delivery is not AuthEnvelopedData');
      const { content } = decryptContent(payload, [{ certificate: this.#o.certificate, key: this.#o.key }]);
      try {
        decodeKeyDelivery(content, { pfxId: item.pfxId, thumbprint: item.thumbprint });
      } finally {
        content.fill(0);
      }
      this.#held.add(item.thumbprint);
      reports.push({ kind: 'imported', id: item.id, state: 'installed', thumbprint: item.thumbprint });
    } catch (e) {
      if (retryable(e) || isKeyfleetError(e, 'KF_CONFLICT')) {
        outcome.pending++;
        return;
      }
      outcome.failed++;
      noteError(counters, `${this.id}: delivery ${item.deliveryId}: ${e instanceof Error ? e.message : String(e)}`);
      if (item.state !== 'installFailed') reports.push({ kind: 'imported', id: item.id, state: 'installFailed', errorCode: isKeyfleetError(e) ? e.code : 'internal-error' });
    }
  }

  /** Everything of the policy is on the device and the service has acknowledged each install. */
  #checkDone(desired: DesiredState): void {
    if (this.doneAt !== undefined) return;
    const scepAll = desired.scep.length > 0 && desired.scep.every((s) => this.#scepDone.has(s.id));
    const importedAll = desired.imported.length >= this.#o.expectedImported && desired.imported.every((i) => this.#importedDone.has(i.id));
    const policiesAll = desired.policies.length > 0 && desired.policies.every((p) => p.notApplicable || this.#policiesDone.has(p.id));
    if (scepAll && importedAll && policiesAll && this.#roots > 0 && this.#configurations > 0) this.doneAt = Date.now();
  }
}
