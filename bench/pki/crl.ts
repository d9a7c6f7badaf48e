/**
 * A full CRL with 100,000 revoked serials (RFC 5280 §5): the store is
 * filled through CaStore.recordIssued, in one transaction, with records
 * already revoked (random 20-octet serials as the CA makes them, a mix of
 * reason codes, one shared placeholder certificate DER — the CRL reads only
 * serial, time and reason), then `authority.generateCrl()` is timed: the
 * store query, the DER encoding, the signature and storing the result.
 *
 * For reference: `openssl crl` reading the same CRL as a whole process
 * (parse only, then parse and verify the signature), and our own decodeCrl
 * plus signature check in-process.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { ISSUING_CA_ID } from '../../src/ca/authority.ts';
import { randomSerial } from '../../src/ca/certificate-builder.ts';
import { initCa } from '../../src/ca/setup.ts';
import type { IssuedCertificateRecord } from '../../src/store/ca.ts';
import { openStore } from '../../src/store/open.ts';
import { decodeCrl, verifyCrlSignature } from '../../src/x509/crl.ts';
import { type ProcessTiming, timeCommand } from './openssl.ts';

export interface CrlMeasurement {
  readonly entries: number;
  readonly insertSeconds: number;
  readonly insertPerSecond: number;
  /** Each generateCrl() in turn, the first one cold. */
  readonly generateMs: readonly number[];
  readonly generateMedianMs: number;
  readonly generateBestMs: number;
  readonly crlBytes: number;
  /** Entries decodeCrl found in the CRL: must equal `entries`. */
  readonly decodedEntries: number;
  readonly signatureValid: boolean;
  /** decodeCrl + verifyCrlSignature in-process, best of the runs. */
  readonly ourParseMs: number;
  readonly opensslParse: ProcessTiming;
  readonly opensslVerify: ProcessTiming;
}

const REASONS: readonly (number | undefined)[] = [undefined, 1, 4, 5, undefined, 3];

export async function measureCrl(dir: string, entries: number, runs: number): Promise<CrlMeasurement> {
  const store = await openStore({ dataDir: join(dir, 'data'), env: {} });
  try {
    await store.ensureTenant('bench', 'Bench');
    const tenant = store.forTenant('bench');
    const ca = await initCa({ store: tenant.ca, keyStore: new SealedKeyStore(randomBytes(32)), keyType: 'rsa-2048' });
    const placeholder = ca.certificate.der;
    const now = Date.now();

    const t0 = performance.now();
    await tenant.transaction(async (tx) => {
      for (let i = 0; i < entries; i++) {
        const at = new Date(now - (entries - i) * 1000);
        const reason = REASONS[i % REASONS.length];
        const record: IssuedCertificateRecord = {
          caId: ISSUING_CA_ID,
          serialHex: Buffer.from(randomSerial()).toString('hex'),
          subject: `CN=revoked-${i}@bench.keyfleet.example`,
          emailAddresses: [`revoked-${i}@bench.keyfleet.example`],
          profile: 'default',
          requester: 'bench',
          notBefore: new Date(now - 365 * 86_400_000),
          notAfter: new Date(now + 365 * 86_400_000),
          issuedAt: new Date(now - 365 * 86_400_000),
          certificateDer: placeholder,
          status: 'revoked',
          revokedAt: at,
          revocationReason: reason,
        };
        await tx.ca.recordIssued(record);
      }
    });
    const insertSeconds = (performance.now() - t0) / 1000;

    const generateMs: number[] = [];
    let der: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < runs; i++) {
      const g0 = performance.now();
      der = (await ca.generateCrl()).der;
      generateMs.push(performance.now() - g0);
    }

    let ourParseMs = Infinity;
    let decodedEntries = 0;
    let signatureValid = false;
    for (let i = 0; i < runs; i++) {
      const p0 = performance.now();
      const crl = decodeCrl(der);
      signatureValid = verifyCrlSignature(crl, ca.certificate);
      ourParseMs = Math.min(ourParseMs, performance.now() - p0);
      decodedEntries = crl.revoked.size;
    }

    const crlFile = join(dir, 'issuing.crl');
    const caFile = join(dir, 'issuing.pem');
    writeFileSync(crlFile, der);
    writeFileSync(caFile, encodePem('CERTIFICATE', ca.certificate.der));
    const opensslParse = timeCommand('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout'], runs);
    // "verify OK" on stderr; anything else is a failure, not a timing.
    const opensslVerify = timeCommand('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caFile], runs, (stdout, stderr) =>
      /verify OK/.test(stdout + stderr) ? undefined : `openssl did not verify the CRL: ${stderr.trim().slice(0, 200)}`,
    );

    const sorted = [...generateMs].sort((a, b) => a - b);
    return {
      entries,
      insertSeconds,
      insertPerSecond: entries / insertSeconds,
      generateMs,
      generateMedianMs: sorted[Math.floor(sorted.length / 2)]!,
      generateBestMs: sorted[0]!,
      crlBytes: der.length,
      decodedEntries,
      signatureValid,
      ourParseMs,
      opensslParse,
      opensslVerify,
    };
  } finally {
    await store.close();
  }
}
