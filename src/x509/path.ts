/**
 * Certification path validation (RFC 5280 §6) for S/MIME (RFC 8550).
 *
 * Paths are built from the end-entity certificate towards a trust anchor by
 * name chaining, preferring issuers whose subjectKeyIdentifier matches the
 * child's authorityKeyIdentifier, and trying alternatives (same-name CAs
 * after a re-key, cross-certificates) depth first. The first path without
 * any reason wins; otherwise the best failing path is reported with its
 * reasons per step, so the verifier can say what is wrong and where.
 *
 * Simplified where S/MIME does not need RFC 5280's machinery: certificate
 * policies are not processed and name constraints are not enforced (a
 * critical nameConstraints extension therefore makes the path untrusted, as
 * any unknown critical extension does).
 */
import { OID } from '../asn1/oids.ts';
import { SequenceReader, Tag, parse, raw } from '../asn1/reader.ts';
import { type Certificate, rsaKeyBits } from './certificate.ts';
import type { CertificateList } from './crl.ts';
import { namesEqual } from './name.ts';
import { SubjectIndex, nameKey } from './name-index.ts';
import { type RevocationSource, crlRevocationSource } from './revocation.ts';
import { signatureScheme, verifySignature } from './signature.ts';

export type { RevocationSource, RevocationStatus, RevocationState } from './revocation.ts';

export type PathReason =
  | 'untrusted-chain'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'wrong-key-usage'
  | 'wrong-eku'
  | 'weak-algorithm';

/** Reasons in the order they are reported. */
const reasonOrder: readonly PathReason[] = ['untrusted-chain', 'expired', 'not-yet-valid', 'revoked', 'wrong-key-usage', 'wrong-eku', 'weak-algorithm'];

/**
 * What the end-entity certificate is being used for (RFC 8550 §4.4). 'any'
 * accepts a key usage that allows either signing or encryption; the
 * extended key usage must allow S/MIME whatever the purpose.
 */
export type Purpose = 'smime-sign' | 'smime-encrypt' | 'any';

export interface PathValidationOptions {
  /** Trusted certificates; a path ends at the first one it reaches. Passing the same (unchanged) array on every call reuses its index. */
  readonly trustAnchors: readonly Certificate[];
  /** Candidate intermediates (from the message, and any supplied). */
  readonly intermediates: readonly Certificate[];
  /** Validation time (default now): `--at` for archived mail. */
  readonly at?: Date;
  readonly purpose: Purpose;
  /** Revocation data; `revoked` is reported only when a CRL covers a certificate. */
  readonly crls?: readonly CertificateList[];
  /** Further revocation sources (e.g. OCSP responses), asked after the CRLs. */
  readonly revocation?: readonly RevocationSource[];
}

export interface PathStep {
  readonly certificate: Certificate;
  readonly reasons: readonly PathReason[];
}

export interface PathResult {
  /** Leaf first, anchor last (as far as it could be built). */
  readonly chain: readonly PathStep[];
  /** Union of all reasons; empty when the path is valid. */
  readonly reasons: readonly PathReason[];
}

/** Longest path tried (certificates, leaf and anchor included). */
const MAX_PATH_LENGTH = 10;
/** Issuer look-ups per validation: bounds the search over cross-certified meshes. */
const SEARCH_BUDGET = 256;
/** Complete candidate paths evaluated before settling for the best failing one. */
const MAX_PATHS = 32;

// ------------------------------------------------------------ cached facts

interface Facts {
  readonly selfIssued: boolean;
  /** Subject and key: two certificates for the same CA key (re-issued, cross-signed) share it. */
  readonly identity: string;
  readonly weakSignature: boolean;
  readonly rsaBits: number | undefined;
  readonly keyType: string | undefined;
}

const factsCache = new WeakMap<Certificate, Facts>();

function facts(cert: Certificate): Facts {
  let f = factsCache.get(cert);
  if (f) return f;
  let weakSignature = false;
  try {
    weakSignature = signatureScheme(cert.signatureAlgorithm).weak;
  } catch {
    // unsupported: the issuer's signature cannot verify, which is reported instead
  }
  let rsaBits: number | undefined;
  let keyType: string | undefined;
  try {
    keyType = cert.publicKey.asymmetricKeyType;
    rsaBits = rsaKeyBits(cert);
  } catch {
    // an unusable key: no signature by it verifies
  }
  f = {
    selfIssued: namesEqual(cert.subject, cert.issuer),
    identity: `${nameKey(cert.subject)}\u0000${Buffer.from(cert.spki.buffer, cert.spki.byteOffset, cert.spki.byteLength).toString('latin1')}`,
    weakSignature,
    rsaBits,
    keyType,
  };
  factsCache.set(cert, f);
  return f;
}

/** RFC 5280 §4.1.1.2: TBSCertificate.signature must equal signatureAlgorithm. */
function signatureAlgorithmsMatch(cert: Certificate): boolean {
  try {
    const t = new SequenceReader(parse(cert.tbs), 'TBSCertificate');
    t.optionalContext(0);
    t.next(Tag.integer);
    return Buffer.compare(raw(t.next(Tag.sequence)), cert.signatureAlgorithm.der) === 0;
  } catch {
    return false;
  }
}

/**
 * Signature checks by (subject, issuer) fingerprint. A verifier sees the
 * same few chains over and over; after the first message each link costs
 * two Map lookups (on the fingerprint strings the certificates keep, whose
 * hashes V8 caches) instead of a public-key operation.
 */
const linkCache = new Map<string, Map<string, boolean>>();
const LINK_CACHE_LIMIT = 4096;

function signedBy(subject: Certificate, issuer: Certificate): boolean {
  let byIssuer = linkCache.get(subject.fingerprint256);
  const hit = byIssuer?.get(issuer.fingerprint256);
  if (hit !== undefined) return hit;
  let ok = false;
  if (signatureAlgorithmsMatch(subject)) {
    try {
      ok = verifySignature(signatureScheme(subject.signatureAlgorithm), subject.tbs, subject.signatureValue, issuer.publicKey);
    } catch {
      ok = false;
    }
  }
  if (!byIssuer) {
    if (linkCache.size >= LINK_CACHE_LIMIT) linkCache.delete(linkCache.keys().next().value!);
    linkCache.set(subject.fingerprint256, (byIssuer = new Map()));
  }
  // Few certificates have many same-name issuers; cap them anyway.
  if (byIssuer.size < 16) byIssuer.set(issuer.fingerprint256, ok);
  return ok;
}

// Indexes over the trust store and CRL sets, kept while the caller keeps the array.
const anchorIndexes = new WeakMap<readonly Certificate[], { readonly index: SubjectIndex; readonly fingerprints: ReadonlySet<string> }>();
const crlSources = new WeakMap<readonly CertificateList[], RevocationSource>();

function anchorIndex(anchors: readonly Certificate[]) {
  let entry = anchorIndexes.get(anchors);
  if (!entry || entry.index.size !== anchors.length) {
    entry = { index: new SubjectIndex(anchors), fingerprints: new Set(anchors.map((a) => a.fingerprint256)) };
    anchorIndexes.set(anchors, entry);
  }
  return entry;
}

function crlSource(crls: readonly CertificateList[]): RevocationSource {
  let source = crlSources.get(crls);
  if (!source) crlSources.set(crls, (source = crlRevocationSource(crls)));
  return source;
}

// ------------------------------------------------------------ path building

interface Search {
  readonly anchors: SubjectIndex;
  readonly anchorFingerprints: ReadonlySet<string>;
  readonly intermediates: SubjectIndex;
  readonly at: number;
  budget: number;
}

interface Candidate {
  readonly certs: readonly Certificate[];
  readonly anchored: boolean;
}

function validAt(cert: Certificate, at: number): boolean {
  return cert.notBefore.getTime() <= at && at <= cert.notAfter.getTime();
}

/**
 * Possible issuers of `child`, best first: a verifying signature, then a
 * keyIdentifier match (RFC 5280 §4.2.1.1), then trust anchors, then
 * certificates valid at the validation time, then the most recent.
 */
function issuersOf(child: Certificate, path: readonly Certificate[], s: Search): Certificate[] {
  const inPath = new Set(path.map((c) => facts(c).identity));
  const seen = new Set<string>();
  const ranked: { cert: Certificate; rank: number[] }[] = [];
  for (const cert of [...s.anchors.find(child.issuer), ...s.intermediates.find(child.issuer)]) {
    if (seen.has(cert.fingerprint256) || inPath.has(facts(cert).identity)) continue;
    seen.add(cert.fingerprint256);
    const aki = child.authorityKeyIdentifier;
    const ski = cert.subjectKeyIdentifier;
    const keyIdRank = aki && ski ? (Buffer.compare(aki, ski) === 0 ? 0 : 2) : 1;
    ranked.push({
      cert,
      rank: [
        signedBy(child, cert) ? 0 : 1,
        keyIdRank,
        s.anchorFingerprints.has(cert.fingerprint256) ? 0 : 1,
        validAt(cert, s.at) ? 0 : 1,
        -cert.notBefore.getTime(),
      ],
    });
  }
  ranked.sort((a, b) => {
    for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i]! - b.rank[i]!;
    return 0;
  });
  return ranked.map((r) => r.cert);
}

function* candidatePaths(path: Certificate[], s: Search): Generator<Candidate> {
  const last = path[path.length - 1]!;
  if (s.anchorFingerprints.has(last.fingerprint256)) {
    yield { certs: path, anchored: true };
    return;
  }
  const issuers = path.length < MAX_PATH_LENGTH && s.budget-- > 0 ? issuersOf(last, path, s) : [];
  if (issuers.length === 0) {
    yield { certs: path, anchored: false };
    return;
  }
  for (const issuer of issuers) yield* candidatePaths([...path, issuer], s);
}

// ------------------------------------------------------------ checks

function ekuAllowsSmime(cert: Certificate): boolean {
  const eku = cert.extKeyUsage;
  return eku === undefined || eku.includes(OID.emailProtection) || eku.includes(OID.anyExtendedKeyUsage);
}

/** RFC 8550 §4.4.2: the key usage an S/MIME end-entity certificate needs for its purpose. */
function keyUsageAllows(cert: Certificate, purpose: Purpose): boolean {
  const ku = cert.keyUsage;
  const canSign = !ku || ku.has('digitalSignature') || ku.has('nonRepudiation');
  // Key transport needs keyEncipherment on an RSA key; key agreement (RFC 5753, RFC 8418) keyAgreement on EC/X25519/X448.
  const type = facts(cert).keyType;
  const needed = type === 'rsa' ? 'keyEncipherment' : type === 'ec' || type === 'x25519' || type === 'x448' ? 'keyAgreement' : undefined;
  const canEncrypt = needed !== undefined && (!ku || ku.has(needed));
  switch (purpose) {
    case 'smime-sign':
      return canSign;
    case 'smime-encrypt':
      return canEncrypt;
    case 'any':
      return canSign || canEncrypt;
  }
}

function evaluate(candidate: Candidate, purpose: Purpose, at: Date, sources: readonly RevocationSource[]): PathResult {
  const { certs, anchored } = candidate;
  const atMs = at.getTime();
  const steps: Set<PathReason>[] = certs.map(() => new Set<PathReason>());
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i]!;
    const reasons = steps[i]!;
    const f = facts(cert);
    const isAnchor = anchored && i === certs.length - 1;

    // §6.1.3 (a)(2)
    if (atMs < cert.notBefore.getTime()) reasons.add('not-yet-valid');
    if (atMs > cert.notAfter.getTime()) reasons.add('expired');
    // §6.1.4 (n) unknown critical extensions
    if (cert.unknownCriticalExtensions.length > 0) reasons.add('untrusted-chain');

    if (i > 0) {
      // §6.1.4 (k): a v3 issuer must assert cA; v1/v2 issuers are accepted only as trust anchors.
      if (cert.version >= 3 || !isAnchor) {
        if (cert.basicConstraints?.cA !== true) reasons.add('untrusted-chain');
      }
      // §6.1.4 (n)
      if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) reasons.add('wrong-key-usage');
      // §6.1.4 (l)/(m): non-self-issued intermediates below this CA count against its pathLenConstraint.
      const pathLen = cert.basicConstraints?.pathLenConstraint;
      if (pathLen !== undefined) {
        let below = 0;
        for (let j = 1; j < i; j++) if (!facts(certs[j]!).selfIssued) below++;
        if (below > pathLen) reasons.add('untrusted-chain');
      }
    }

    // §6.1.3 (a)(1)
    if (i < certs.length - 1 && !signedBy(cert, certs[i + 1]!)) reasons.add('untrusted-chain');
    if (i === certs.length - 1 && !anchored) reasons.add('untrusted-chain');

    // Weak algorithms: a trust anchor is trusted as it is, except as the signer's own key.
    if (!isAnchor && f.weakSignature) reasons.add('weak-algorithm');
    if ((!isAnchor || i === 0) && f.rsaBits !== undefined && f.rsaBits < 2048) reasons.add('weak-algorithm');

    // RFC 8550 §4.4.4 for the leaf; intermediates restricting EKU must allow
    // S/MIME too, as OpenSSL, NSS and Windows require.
    if ((i === 0 || !isAnchor) && !ekuAllowsSmime(cert)) reasons.add('wrong-eku');
    if (i === 0 && !keyUsageAllows(cert, purpose)) reasons.add('wrong-key-usage');

    // §6.1.3 (a)(3)
    if (i < certs.length - 1 && !isAnchor) {
      const issuer = certs[i + 1]!;
      for (const source of sources) {
        if (source.status(cert, issuer, at).status === 'revoked') {
          reasons.add('revoked');
          break;
        }
      }
    }
  }
  const union = new Set<PathReason>();
  for (const s of steps) for (const r of s) union.add(r);
  const ordered = (set: ReadonlySet<PathReason>) => reasonOrder.filter((r) => set.has(r));
  return { chain: certs.map((certificate, i) => ({ certificate, reasons: ordered(steps[i]!) })), reasons: ordered(union) };
}

/** Lexicographic badness of a failing path: unanchored, then broken links, then number of reasons. */
function badness(candidate: Candidate, result: PathResult): number[] {
  return [candidate.anchored ? 0 : 1, result.chain.filter((s) => s.reasons.includes('untrusted-chain')).length, result.reasons.length, candidate.certs.length];
}

function better(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * Validates `leaf` for `purpose` at `options.at`: builds a path to one of
 * the trust anchors and reports, per certificate, what is wrong with it.
 */
export function validatePath(leaf: Certificate, options: PathValidationOptions): PathResult {
  const at = options.at ?? new Date();
  const anchors = anchorIndex(options.trustAnchors);
  const search: Search = {
    anchors: anchors.index,
    anchorFingerprints: anchors.fingerprints,
    intermediates: new SubjectIndex(options.intermediates),
    at: at.getTime(),
    budget: SEARCH_BUDGET,
  };
  const sources: RevocationSource[] = [];
  if (options.crls && options.crls.length > 0) sources.push(crlSource(options.crls));
  if (options.revocation) sources.push(...options.revocation);

  let best: { result: PathResult; score: number[] } | undefined;
  let evaluated = 0;
  for (const candidate of candidatePaths([leaf], search)) {
    const result = evaluate(candidate, options.purpose, at, sources);
    if (result.reasons.length === 0) return result;
    const score = badness(candidate, result);
    if (!best || better(score, best.score)) best = { result, score };
    if (++evaluated >= MAX_PATHS) break;
  }
  return best!.result;
}
