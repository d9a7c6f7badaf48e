/**
 * The users' imported encryption history (issue 5: "the user's whole
 * history of encryption certificates with their private keys"): for each
 * user slot, HISTORY certificates from a mail CA of the past (the oldest
 * expired), each as its own PKCS#12 under its own password, the password
 * RSA-OAEP-SHA-512 encrypted to the connector's public key — what
 * `keyfleet pfx import` uploads (src/policy/pfx-import.ts preparePfxImport;
 * its metadata read is skipped here, since we made the certificate).
 *
 * Writing a PKCS#12 costs ~10 ms (PBKDF2, 2,048 iterations, OpenSSL's
 * default), so the slots are split over worker threads (pfx-worker.ts).
 * A slot's files serve the slot's user in each delivery set: the
 * connector re-wraps per (device, PFX), so sharing the bytes changes no
 * work it does.
 */
import { constants, createPrivateKey, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { OID } from '../../src/asn1/oids.ts';
import { buildCertificate, makeSigner, randomSerial } from '../../src/ca/certificate-builder.ts';
import { authorityKeyIdentifier, basicConstraints, extKeyUsage, keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier } from '../../src/ca/extensions.ts';
import { writePkcs12 } from '../../src/pkcs12/index.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { createSignature } from '../../src/x509/signature.ts';

/** Encryption certificates per user: the seeded tenant's users with a history hold two (bench/service/seed.ts). */
export const HISTORY = 2;
const DAY = 86_400_000;
const YEAR = 365 * DAY;

/** Everything a worker needs, as plain data. */
export interface HistoryInput {
  readonly caKey: string;
  readonly caCert: string;
  /** RSA-2048 keys (PKCS#8 DER, base64), used round-robin. */
  readonly keyPool: readonly string[];
  readonly connectorPublicKeyPem: string;
  readonly now: number;
  readonly domain: string;
}

export interface HistoryEntry {
  readonly slot: number;
  readonly index: number;
  /** SHA-1 of the certificate, upper-case hex. */
  readonly thumbprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly pfx: Uint8Array;
  readonly encryptedPassword: Uint8Array;
}

export const slotEmail = (slot: number, domain: string): string => `dlv-mail-${String(slot).padStart(6, '0')}@${domain}`;

/** The mail CA of the past that issued the imported certificates (its key is a pool key). */
export async function mailCa(key: string, now: number): Promise<{ caKey: string; caCert: string }> {
  const privateKey = createPrivateKey({ key: Buffer.from(key, 'base64'), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const name = encodeName([['O', 'Keyfleet Bench'], ['CN', 'Mail Encryption CA (history)']]);
  const der = await buildCertificate(
    {
      serialNumber: randomSerial(), issuer: name, subject: name, notBefore: new Date(now - 6 * YEAR), notAfter: new Date(now + 6 * YEAR), spki,
      extensions: [basicConstraints(true), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(spki))],
    },
    makeSigner(publicKey, (scheme, data) => Promise.resolve(createSignature(scheme, data, privateKey))),
  );
  return { caKey: key, caCert: Buffer.from(der).toString('base64') };
}

/** Slots [from, to): HISTORY entries each, oldest first. */
export async function buildHistoryRange(input: HistoryInput, from: number, to: number): Promise<HistoryEntry[]> {
  const caKey = createPrivateKey({ key: Buffer.from(input.caKey, 'base64'), format: 'der', type: 'pkcs8' });
  const ca = decodeCertificate(Buffer.from(input.caCert, 'base64'));
  const caKid = keyIdentifier(ca.spki);
  const signer = makeSigner(createPublicKey(caKey), (scheme, data) => Promise.resolve(createSignature(scheme, data, caKey)));
  const pool = input.keyPool.map((k) => createPrivateKey({ key: Buffer.from(k, 'base64'), format: 'der', type: 'pkcs8' }));
  const connector = createPublicKey(input.connectorPublicKeyPem);
  const out: HistoryEntry[] = [];
  for (let slot = from; slot < to; slot++) {
    const email = slotEmail(slot, input.domain);
    for (let index = 0; index < HISTORY; index++) {
      const key = pool[(slot * HISTORY + index) % pool.length]!;
      const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
      // Two-year certificates, one after another: the oldest expired a year ago, the newest is current.
      const start = input.now - (HISTORY - index) * YEAR - 30 * DAY;
      const certificate: Certificate = decodeCertificate(
        await buildCertificate(
          {
            serialNumber: randomSerial(), issuer: ca.subject.der, subject: encodeName([['O', 'Keyfleet Bench'], ['CN', email]]),
            notBefore: new Date(start), notAfter: new Date(start + 2 * YEAR), spki,
            extensions: [
              basicConstraints(false), keyUsage(['keyEncipherment']), extKeyUsage([OID.emailProtection]),
              subjectAltName({ emails: [email], upns: [] })!, subjectKeyIdentifier(keyIdentifier(spki)), authorityKeyIdentifier(caKid),
            ],
          },
          signer,
        ),
      );
      const password = randomBytes(12).toString('base64url');
      const pfx = writePkcs12([{ key, certificate, chain: [ca] }], password);
      const encryptedPassword = publicEncrypt({ key: connector, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' }, Buffer.from(password, 'utf8'));
      out.push({ slot, index, thumbprint: certificate.thumbprint, notBefore: certificate.notBefore.getTime(), notAfter: certificate.notAfter.getTime(), pfx, encryptedPassword });
    }
  }
  return out;
}

/** Every slot's history, on one worker thread per core. */
export async function buildHistory(input: HistoryInput, slots: number): Promise<HistoryEntry[]> {
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(slots / 200)));
  const per = Math.ceil(slots / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const from = w * per;
      const to = Math.min(slots, from + per);
      return new Promise<HistoryEntry[]>((resolve, reject) => {
        const worker = new Worker(new URL('./pfx-worker.ts', import.meta.url), { workerData: { input, from, to } });
        worker.once('message', (entries: HistoryEntry[]) => resolve(entries));
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`PFX worker exited with ${code}`))));
      });
    }),
  );
  return parts.flat();
}
