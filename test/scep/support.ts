/**
 * Test doubles and helpers for the SCEP tests: a small CA built with the CA
 * layer's certificate builder, an issuer double that counts its calls, an
 * in-memory ScepStore, and a minimal node:http adapter over `handle()` (the
 * Fastify wiring is the server's).
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OID } from '../../src/asn1/oids.ts';
import { buildCertificate, makeSigner, randomSerial, type CertificateSigner } from '../../src/ca/certificate-builder.ts';
import { authorityKeyIdentifier, basicConstraints, extKeyUsage, keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier } from '../../src/ca/extensions.ts';
import type { KeyUsage } from '../../src/x509/certificate.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { createSignature } from '../../src/x509/signature.ts';
import type { ChallengeRecord, ConsumeResult, ScepProfileRecord, ScepStore, ScepTransactionRecord } from '../../src/store/scep.ts';
import type { ScepIssueOutcome, ScepIssueRequest, ScepIssuedCertificate, ScepIssuer, ScepRaIdentity, ScepService } from '../../src/scep/service.ts';

export const DAY = 86_400_000;

export function rsaKey(bits = 2048): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
}

function signerFor(key: KeyObject, publicKey: KeyObject): CertificateSigner {
  return makeSigner(publicKey, (scheme, data) => Promise.resolve(createSignature(scheme, data, key)));
}

function spkiOf(publicKey: KeyObject): Uint8Array {
  return (publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey).export({ format: 'der', type: 'spki' });
}

export interface TestCa {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly ra: ScepRaIdentity;
  issue(subject: Uint8Array, publicKey: KeyObject, options?: { emails?: readonly string[]; upns?: readonly string[]; notAfter?: Date; notBefore?: Date }): Promise<Certificate>;
}

export async function createTestCa(options: { raUsages?: KeyUsage[] } = {}): Promise<TestCa> {
  const key = rsaKey();
  const publicKey = createPublicKey(key);
  const caSpki = spkiOf(publicKey);
  const caName = encodeName([['C', 'DE'], ['O', 'Keyfleet Test'], ['CN', 'SCEP Test CA']]);
  const caKid = keyIdentifier(caSpki);
  const signer = signerFor(key, publicKey);
  const now = Date.now();
  const caDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      issuer: caName,
      subject: caName,
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 365 * DAY),
      spki: caSpki,
      extensions: [basicConstraints(true), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(caKid)],
    },
    signer,
  );
  const certificate = decodeCertificate(caDer);
  const issue: TestCa['issue'] = async (subject, subjectPublicKey, o = {}) => {
    const spki = spkiOf(subjectPublicKey);
    const san = subjectAltName({ emails: o.emails ?? [], upns: o.upns ?? [] });
    const der = await buildCertificate(
      {
        serialNumber: randomSerial(),
        issuer: caName,
        subject,
        notBefore: o.notBefore ?? new Date(now - 60_000),
        notAfter: o.notAfter ?? new Date(now + 30 * DAY),
        spki,
        extensions: [
          basicConstraints(false),
          keyUsage(['digitalSignature', 'keyEncipherment']),
          extKeyUsage([OID.emailProtection, OID.clientAuth]),
          subjectKeyIdentifier(keyIdentifier(spki)),
          authorityKeyIdentifier(caKid),
          ...(san ? [san] : []),
        ],
      },
      signer,
    );
    return decodeCertificate(der);
  };
  const raKey = rsaKey();
  const raPublic = createPublicKey(raKey);
  const raSpki = spkiOf(raPublic);
  const raDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      issuer: caName,
      subject: encodeName([['C', 'DE'], ['O', 'Keyfleet Test'], ['CN', 'SCEP Test RA']]),
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 365 * DAY),
      spki: raSpki,
      extensions: [basicConstraints(false), keyUsage(options.raUsages ?? ['digitalSignature', 'keyEncipherment']), subjectKeyIdentifier(keyIdentifier(raSpki)), authorityKeyIdentifier(caKid)],
    },
    signer,
  );
  return { certificate, key, ra: { certificate: decodeCertificate(raDer), key: raKey, chain: [certificate] }, issue };
}

/** A self-signed requester certificate (RFC 8894 §2.3) for PKCSReq. */
export async function selfSigned(key: KeyObject, subject: Uint8Array): Promise<Certificate> {
  const publicKey = createPublicKey(key);
  const spki = spkiOf(publicKey);
  const der = await buildCertificate(
    { serialNumber: randomSerial(), issuer: subject, subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + DAY), spki, extensions: [keyUsage(['digitalSignature', 'keyEncipherment'])] },
    signerFor(key, publicKey),
  );
  return decodeCertificate(der);
}

/** An issuer double over TestCa: counts its calls, can answer pending. */
export class FakeIssuer implements ScepIssuer {
  readonly ca: TestCa;
  readonly issued = new Map<string, ScepIssuedCertificate>();
  readonly requests: ScepIssueRequest[] = [];
  mode: 'issue' | 'pending' = 'issue';
  readonly pending = new Map<string, ScepIssueRequest>();

  constructor(ca: TestCa) {
    this.ca = ca;
  }

  get calls(): number {
    return this.requests.length;
  }

  async issue(request: ScepIssueRequest): Promise<ScepIssueOutcome> {
    this.requests.push(request);
    if (this.mode === 'pending') {
      this.pending.set(request.transactionId, request);
      return { status: 'pending' };
    }
    return this.#issueNow(request);
  }

  async #issueNow(request: ScepIssueRequest): Promise<ScepIssueOutcome> {
    const san = request.csr.subjectAltName;
    const certificate = await this.ca.issue(request.csr.subject.der, request.csr.publicKey, { emails: san?.rfc822Names ?? [], upns: san?.upns ?? [] });
    this.issued.set(certificate.serialHex, { certificate, revoked: false });
    return { status: 'issued', certificate, chain: [this.ca.certificate] };
  }

  /** Approves a pending request (as an operator would). */
  approve(transactionId: string): void {
    this.mode = 'issue';
    const r = this.pending.get(transactionId);
    if (r) this.approved.set(transactionId, r);
  }

  readonly approved = new Map<string, ScepIssueRequest>();

  async poll(transactionId: string): Promise<ScepIssueOutcome | undefined> {
    const r = this.approved.get(transactionId);
    if (r) {
      this.approved.delete(transactionId);
      this.pending.delete(transactionId);
      return this.#issueNow(r);
    }
    return this.pending.has(transactionId) ? { status: 'pending' } : undefined;
  }

  lookup(serialHex: string): Promise<ScepIssuedCertificate | undefined> {
    return Promise.resolve(this.issued.get(serialHex));
  }

  revoke(serialHex: string): void {
    const e = this.issued.get(serialHex);
    if (e) this.issued.set(serialHex, { ...e, revoked: true });
  }
}

/** An in-memory ScepStore (recordTransaction replaces by id, as the service expects). */
export class MemoryScepStore implements ScepStore {
  readonly profiles = new Map<string, ScepProfileRecord>();
  readonly challenges = new Map<string, ChallengeRecord & { used: boolean }>();
  readonly transactions = new Map<string, ScepTransactionRecord>();

  putProfile(record: ScepProfileRecord): Promise<void> {
    this.profiles.set(record.name, record);
    return Promise.resolve();
  }
  getProfile(name: string): Promise<ScepProfileRecord | undefined> {
    return Promise.resolve(this.profiles.get(name));
  }
  listProfiles(): Promise<ScepProfileRecord[]> {
    return Promise.resolve([...this.profiles.values()]);
  }
  putChallenge(record: ChallengeRecord): Promise<void> {
    this.challenges.set(record.hash, { ...record, used: false });
    return Promise.resolve();
  }
  withdrawChallenges(deviceId: string, profilePrefix: string | undefined): Promise<number> {
    let n = 0;
    for (const c of this.challenges.values()) {
      if (c.used || c.deviceId !== deviceId || (profilePrefix !== undefined && !c.profile.startsWith(profilePrefix))) continue;
      c.used = true;
      n++;
    }
    return Promise.resolve(n);
  }
  consumeChallenge(hash: string, now: Date): Promise<ConsumeResult> {
    const c = this.challenges.get(hash);
    if (!c) return Promise.resolve({ outcome: 'unknown' });
    if (c.used) return Promise.resolve({ outcome: 'used' });
    if (c.expiresAt.getTime() <= now.getTime()) return Promise.resolve({ outcome: 'expired' });
    c.used = true;
    const { used: _used, ...challenge } = c;
    return Promise.resolve({ outcome: 'ok', challenge });
  }
  peekChallenge(hash: string, now: Date): Promise<ConsumeResult> {
    const c = this.challenges.get(hash);
    if (!c) return Promise.resolve({ outcome: 'unknown' });
    if (c.used) return Promise.resolve({ outcome: 'used' });
    if (c.expiresAt.getTime() <= now.getTime()) return Promise.resolve({ outcome: 'expired' });
    const { used: _used, ...challenge } = c;
    return Promise.resolve({ outcome: 'ok', challenge });
  }
  recordTransaction(record: ScepTransactionRecord): Promise<void> {
    this.transactions.set(record.transactionId, record);
    return Promise.resolve();
  }
  getTransaction(transactionId: string): Promise<ScepTransactionRecord | undefined> {
    return Promise.resolve(this.transactions.get(transactionId));
  }
  listTransactions(): Promise<ScepTransactionRecord[]> {
    return Promise.resolve([...this.transactions.values()]);
  }
}

/** A minimal HTTP adapter: /scep/<profile>[/pkiclient.exe]?operation=…[&message=…], GET and POST. */
export interface ServedRequest {
  readonly method: string;
  readonly operation: string;
  /** The PKIOperation message as DER (POST body or decoded GET parameter). */
  readonly message: Uint8Array | undefined;
}

export async function serveScep(service: ScepService): Promise<{ url: (profile: string) => string; server: Server; close: () => Promise<void>; requests: ServedRequest[] }> {
  const requests: ServedRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/scep\/([^/]+)(?:\/pkiclient\.exe)?\/?$/.exec(url.pathname);
    const operation = url.searchParams.get('operation') ?? '';
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      const message = req.method === 'POST' ? Buffer.concat(chunks) : (url.searchParams.get('message') ?? undefined);
      requests.push({ method: req.method ?? '', operation, message: typeof message === 'string' ? Buffer.from(message.replace(/ /g, '+'), 'base64') : message });
      service.handle(operation, message, decodeURIComponent(m[1]!)).then(
        (r) => res.writeHead(r.status, { 'content-type': r.contentType, 'content-length': r.body.length }).end(r.body),
        () => res.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (profile) => `http://127.0.0.1:${port}/scep/${profile}/pkiclient.exe`,
    server,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

