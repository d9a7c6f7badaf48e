/**
 * An in-memory CaStore for the CA's unit tests, following the contract in
 * src/store/ca.ts (KF_CONFLICT on duplicates, first revocation stands,
 * CRL numbers allocated per CA and rolled back when the build throws).
 */
import { KeyfleetError } from '../../src/errors.ts';
import type { CaRecord, CaStore, CrlRecord, IssuedCertificateRecord, ListIssuedOptions, RevokedEntry } from '../../src/store/ca.ts';

export class MemoryCaStore implements CaStore {
  readonly cas = new Map<string, CaRecord>();
  readonly issued = new Map<string, Map<string, IssuedCertificateRecord>>();
  readonly crls = new Map<string, CrlRecord>();
  readonly crlCounters = new Map<string, bigint>();

  async getCa(id: string): Promise<CaRecord | undefined> {
    return this.cas.get(id);
  }

  async listCas(): Promise<CaRecord[]> {
    return [...this.cas.values()];
  }

  async putCa(record: CaRecord): Promise<void> {
    if (this.cas.has(record.id)) throw new KeyfleetError('KF_CONFLICT', `CA ${record.id} exists`);
    this.cas.set(record.id, record);
  }

  async replaceCa(record: CaRecord): Promise<void> {
    if (!this.cas.has(record.id)) throw new KeyfleetError('KF_NOT_FOUND', `no CA ${record.id}`);
    this.cas.set(record.id, record);
  }

  #issuedOf(caId: string): Map<string, IssuedCertificateRecord> {
    let m = this.issued.get(caId);
    if (!m) this.issued.set(caId, (m = new Map()));
    return m;
  }

  async recordIssued(record: IssuedCertificateRecord): Promise<void> {
    const m = this.#issuedOf(record.caId);
    if (m.has(record.serialHex)) throw new KeyfleetError('KF_CONFLICT', `serial ${record.serialHex} exists`);
    m.set(record.serialHex, record);
  }

  async getIssued(caId: string, serialHex: string): Promise<IssuedCertificateRecord | undefined> {
    return this.#issuedOf(caId).get(serialHex);
  }

  async listIssued(caId: string, options: ListIssuedOptions = {}): Promise<IssuedCertificateRecord[]> {
    let all = [...this.#issuedOf(caId).values()].sort((a, b) => (a.serialHex < b.serialHex ? -1 : a.serialHex > b.serialHex ? 1 : 0));
    if (options.status) all = all.filter((r) => r.status === options.status);
    if (options.afterSerialHex !== undefined) all = all.filter((r) => r.serialHex > options.afterSerialHex!);
    return options.limit === undefined ? all : all.slice(0, options.limit);
  }

  async revoke(caId: string, serialHex: string, reason: number | undefined, at: Date): Promise<boolean> {
    const m = this.#issuedOf(caId);
    const r = m.get(serialHex);
    if (!r || r.status === 'revoked') return false;
    m.set(serialHex, { ...r, status: 'revoked', revokedAt: at, revocationReason: reason });
    return true;
  }

  async listRevoked(caId: string): Promise<RevokedEntry[]> {
    return [...this.#issuedOf(caId).values()]
      .filter((r) => r.status === 'revoked')
      .map((r) => ({ serialHex: r.serialHex, revokedAt: r.revokedAt!, reason: r.revocationReason }));
  }

  async putCrl(caId: string, build: (crlNumber: bigint) => Omit<CrlRecord, 'caId' | 'crlNumber'>): Promise<CrlRecord> {
    if (!this.cas.has(caId)) throw new KeyfleetError('KF_NOT_FOUND', `no CA "${caId}"`);
    const crlNumber = (this.crlCounters.get(caId) ?? 0n) + 1n;
    const built = build(crlNumber); // throws before the counter moves: the number is rolled back
    this.crlCounters.set(caId, crlNumber);
    const record = { caId, crlNumber, ...built };
    this.crls.set(caId, record);
    return record;
  }

  async getLatestCrl(caId: string): Promise<CrlRecord | undefined> {
    return this.crls.get(caId);
  }
}
