/** Records for the store conformance suite. */
import type { CaRecord, IssuedCertificateRecord } from '../../src/store/ca.ts';
import type { ChallengeRecord, ScepProfileRecord, ScepTransactionRecord } from '../../src/store/scep.ts';

/** A whole-millisecond instant: the store keeps ms precision. */
export const T0 = new Date('2030-01-02T03:04:05.678Z');

export function at(offsetMs: number): Date {
  return new Date(T0.getTime() + offsetMs);
}

export const HOUR = 3_600_000;

export function bytesOf(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

export function caRecord(id = 'issuing', overrides: Partial<CaRecord> = {}): CaRecord {
  return {
    id,
    role: 'issuing',
    certificateDer: bytesOf(0x30, 0x03, 0x02, 0x01, 0x01),
    chainDer: [bytesOf(0x30, 0x00), bytesOf(0x30, 0x01, 0xff)],
    keyRef: `file:${id}`,
    sealedKey: bytesOf(9, 8, 7, 0, 255),
    createdAt: T0,
    ...overrides,
  };
}

/** A 20-byte serial in lower-case hex whose order follows `n`. */
export function serial(n: number): string {
  return '7f' + n.toString(16).padStart(38, '0');
}

export function issuedRecord(caId: string, serialHex: string, overrides: Partial<IssuedCertificateRecord> = {}): IssuedCertificateRecord {
  return {
    caId,
    serialHex,
    subject: 'CN=alice@example.com',
    emailAddresses: ['alice@example.com', 'a@example.org'],
    profile: 'smime-signing',
    requester: 'device-1',
    notBefore: at(-HOUR),
    notAfter: at(365 * 24 * HOUR),
    issuedAt: T0,
    certificateDer: bytesOf(0x30, 0x82, 0x00, 0x00, 0x42),
    status: 'good',
    revokedAt: undefined,
    revocationReason: undefined,
    ...overrides,
  };
}

export function profileRecord(name: string, caId = 'issuing'): ScepProfileRecord {
  return {
    name,
    caId,
    template: { kind: 'smime-signing', keyTypes: ['rsa-2048', 'p-256'], validityDays: 365, nested: { a: [1, null] } },
    createdAt: T0,
  };
}

export function challengeRecord(hash: string, profile: string, overrides: Partial<ChallengeRecord> = {}): ChallengeRecord {
  return {
    hash,
    profile,
    deviceId: 'device-1',
    subject: 'CN=alice@example.com,O=Example',
    sanEmail: 'alice@example.com',
    sanUpn: undefined,
    createdAt: T0,
    expiresAt: at(HOUR),
    ...overrides,
  };
}

export function transactionRecord(transactionId: string, overrides: Partial<ScepTransactionRecord> = {}): ScepTransactionRecord {
  return {
    transactionId,
    profile: 'default',
    messageType: 'PKCSReq',
    requester: 'CN=alice@example.com',
    outcome: 'success',
    failInfo: undefined,
    serialHex: serial(1),
    createdAt: T0,
    ...overrides,
  };
}
