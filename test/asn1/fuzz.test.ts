/**
 * Seeded mutation fuzz of certificate DER: whatever the bytes, the decoders
 * return or throw a KeyfleetError — never a TypeError, a RangeError, a hang
 * or an allocation out of proportion to the input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyfleetError } from '../../src/errors.ts';
import { type Tlv, children, parse } from '../../src/asn1/reader.ts';
import { type Certificate, decodeCertificate, rsaKeyBits } from '../../src/x509/certificate.ts';
import { validatePath } from '../../src/x509/path.ts';
import { TestPki, caExt, type Issued } from '../x509/pki.ts';

/** mulberry32: small, seedable, good enough to spread mutations. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
  };
}

/** Offsets of every element's identifier octet, to aim mutations at headers. */
function headerOffsets(bytes: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (t: Tlv) => {
    out.push(t.start);
    if (t.constructed) for (const c of children(t)) walk(c);
  };
  walk(parse(bytes));
  return out;
}

function mutate(input: Uint8Array, headers: readonly number[], rnd: (n: number) => number): Uint8Array {
  const b = Buffer.from(input);
  const at = () => Math.floor(rnd(b.length));
  switch (Math.floor(rnd(8))) {
    case 0: {
      for (let i = 0, n = 1 + Math.floor(rnd(4)); i < n; i++) b[at()] = Math.floor(rnd(256));
      return b;
    }
    case 1:
      b[at()] = [0x00, 0x80, 0xff, 0x30, 0x7f, 0x81][Math.floor(rnd(6))]!;
      return b;
    case 2:
      return b.subarray(0, at());
    case 3: {
      const p = at();
      return Buffer.concat([b.subarray(0, p), Buffer.from(Array.from({ length: 1 + Math.floor(rnd(8)) }, () => Math.floor(rnd(256)))), b.subarray(p)]);
    }
    case 4: {
      const p = at();
      return Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + 1 + Math.floor(rnd(16))))]);
    }
    case 5: {
      const p = at();
      const q = Math.min(b.length, p + Math.floor(rnd(64)));
      return Buffer.concat([b.subarray(0, q), b.subarray(p, q), b.subarray(q)]);
    }
    default: {
      // Aim at a length octet: indefinite, huge, off by one, or a long form that lies.
      const h = headers[Math.floor(rnd(headers.length))]! + 1;
      const choice = Math.floor(rnd(5));
      if (choice === 0) b[h] = 0x80;
      else if (choice === 1) return Buffer.concat([b.subarray(0, h), Buffer.from('84ffffffff', 'hex'), b.subarray(h + 1)]);
      else if (choice === 2) b[h] = (b[h]! + 1) & 0xff;
      else if (choice === 3) b[h] = (b[h]! - 1) & 0xff;
      else return Buffer.concat([b.subarray(0, h), Buffer.from('8700', 'hex'), b.subarray(h + 1)]);
      return b;
    }
  }
}

/** Touches everything a consumer would read, including the lazily built public key. */
function consume(cert: Certificate): void {
  void cert.publicKey.asymmetricKeyType;
  void rsaKeyBits(cert);
  void cert.emailAddresses.length;
}

let pki: TestPki;
let root: Issued;
let samples: { name: string; der: Uint8Array }[];

before(() => {
  pki = new TestPki();
  root = pki.root('Fuzz Root', { key: 'p256' });
  const int = pki.issue('Fuzz Intermediate', root, { key: 'rsa2048', ext: [...caExt(0), 'crlDistributionPoints = URI:http://crl.example.com/int.crl', 'certificatePolicies = 1.3.6.1.4.1.55555.1.1'] });
  const rich = pki.issue('Fuzz Leaf', int, {
    subject: '/C=DE/O=Fuzz Corp/OU=QA/CN=Fuzz Leaf/emailAddress=fuzz@example.com',
    ext: [
      'basicConstraints = critical,CA:false',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = emailProtection,clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid,issuer',
      'subjectAltName = email:fuzz@example.com,email:alias@example.com,URI:https://example.com/u,DNS:mail.example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:fuzz@corp.example,dirName:dir_sect',
      'authorityInfoAccess = OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://ca.example.com/int.cer',
      'crlDistributionPoints = URI:http://crl.example.com/leaf.crl',
      '[dir_sect]',
      'CN = Directory Name',
    ],
  });
  const ed = pki.issue('Fuzz Ed25519', root, { key: 'ed25519' });
  samples = [
    { name: 'RSA leaf with every extension', der: rich.certificate.der },
    { name: 'RSA intermediate', der: int.certificate.der },
    { name: 'Ed25519 leaf', der: ed.certificate.der },
  ];
});

after(() => pki.cleanup());

describe('mutation fuzz of certificate DER', () => {
  test('decodeCertificate returns or throws a KeyfleetError, for thousands of mutants', (t) => {
    const rnd = prng(0x5eed_2024);
    const causes = new Map<string, number>();
    let decoded = 0;
    let rejected = 0;
    const started = performance.now();
    for (const sample of samples) {
      const headers = headerOffsets(sample.der);
      for (let i = 0; i < 2500; i++) {
        const m = mutate(sample.der, headers, rnd);
        let cert: Certificate | undefined;
        try {
          cert = decodeCertificate(m);
          consume(cert);
          decoded++;
        } catch (e) {
          if (!(e instanceof KeyfleetError)) assert.fail(`${sample.name}, mutant ${i}: ${String(e)} (input ${Buffer.from(m).toString('hex')})`);
          assert.ok(e.code === 'KF_CERT_INVALID' || e.code === 'KF_ASN1_MALFORMED' || e.code === 'KF_ASN1_LIMIT', e.code);
          rejected++;
          const cause = (e as { cause?: unknown }).cause;
          if (cause !== undefined && !(cause instanceof KeyfleetError)) {
            const key = cause instanceof Error ? `${cause.name}: ${cause.message.slice(0, 80)}` : String(cause);
            causes.set(key, (causes.get(key) ?? 0) + 1);
          }
        }
        // A certificate that decodes must not break path validation either.
        if (cert) {
          const r = validatePath(cert, { trustAnchors: [root.certificate], intermediates: [], purpose: 'smime-sign' });
          assert.ok(Array.isArray(r.reasons));
        }
      }
    }
    const elapsed = performance.now() - started;
    t.diagnostic(`${decoded} mutants decoded, ${rejected} rejected in ${elapsed.toFixed(0)} ms`);
    for (const [cause, n] of causes) t.diagnostic(`rejected via a non-coded internal error ×${n}: ${cause}`);
    assert.ok(rejected > 1000 && decoded > 0);
    assert.ok(elapsed < 30_000);
  });

  test('the generic reader walks any mutant or throws a coded ASN.1 error', () => {
    const rnd = prng(42);
    const walk = (t: Tlv, depth: number): void => {
      if (t.constructed && depth < 200) for (const c of children(t)) walk(c, depth + 1);
    };
    for (const sample of samples) {
      const headers = headerOffsets(sample.der);
      for (let i = 0; i < 2000; i++) {
        const m = mutate(sample.der, headers, rnd);
        try {
          walk(parse(m), 0);
        } catch (e) {
          assert.ok(e instanceof KeyfleetError && (e.code === 'KF_ASN1_MALFORMED' || e.code === 'KF_ASN1_LIMIT'), String(e));
        }
      }
    }
  });
});
