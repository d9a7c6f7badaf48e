/**
 * Verification of SignedData (RFC 5652 §5.4–§5.6) for S/MIME (RFC 8551,
 * RFC 8550). Every signer gets a structured result with reasons as codes;
 * a damaged signer never hides the others.
 *
 * Everything is checked over the bytes as received (REFERENCE.md pitfalls 3
 * and 4): the content's own segments, and the signed attributes' received
 * encoding re-tagged as SET.
 */
import { KeyfleetError } from '../../errors.ts';
import { oidName } from '../../asn1/oids.ts';
import { type Certificate, rsaKeyBits } from '../../x509/certificate.ts';
import type { CertificateList } from '../../x509/crl.ts';
import { type PathResult, type RevocationSource, validatePath } from '../../x509/path.ts';
import { type HashName, type SignatureScheme, hashFromOid, signatureScheme, verifySignature } from '../../x509/signature.ts';
import { type ChainStep, type SignerReason, type SignerResult, type VerifyResult, verifyResult } from '../result.ts';
import { signedAttributesForSignature } from './attributes.ts';
import { type DecodedSignedData, contentSegments, digestSegments } from './signed-data.ts';
import { type SignerInfo, identifies } from './signer-info.ts';

export interface VerifySignedDataOptions {
  /** The signed content of a detached signature (multipart/signed), as segments or one array. */
  readonly detachedContent?: Uint8Array | readonly Uint8Array[];
  readonly trustAnchors: readonly Certificate[];
  /** Certificates to look for the signer and intermediates in, besides the message's own. */
  readonly extraCertificates?: readonly Certificate[];
  readonly crls?: readonly CertificateList[];
  /** Further revocation sources for path validation (e.g. OCSP responses). */
  readonly revocation?: readonly RevocationSource[];
  /** Validation time (default now); for archived mail. */
  readonly at?: Date;
  /** The From: address; when given, a signer whose certificate does not name it gets `sender-mismatch`. */
  readonly senderAddress?: string;
}

/** What all signers of one message share: the content, its digests, the certificate pool. */
interface Context {
  readonly sd: DecodedSignedData;
  readonly segments: readonly Uint8Array[];
  readonly digests: Map<HashName, Uint8Array>;
  readonly pool: readonly Certificate[];
  readonly options: VerifySignedDataOptions;
}

/**
 * Verifies every SignerInfo: digest, signature, signer certificate, path
 * to a trust anchor (purpose smime-sign), algorithm strength and sender.
 * Throws KF_CMS_MALFORMED when there is no content to verify against.
 */
export function verifySignedData(sd: DecodedSignedData, options: VerifySignedDataOptions): VerifyResult {
  let segments: readonly Uint8Array[];
  if (sd.content !== undefined) {
    if (options.detachedContent !== undefined) throw new KeyfleetError('KF_USAGE', 'detached content was supplied for a SignedData that encapsulates its content');
    segments = sd.content;
  } else {
    if (options.detachedContent === undefined) throw new KeyfleetError('KF_CMS_MALFORMED', 'SignedData is detached and no signed content was supplied');
    segments = contentSegments(options.detachedContent);
  }
  const pool = options.extraCertificates?.length ? [...sd.certificates, ...options.extraCertificates] : sd.certificates;
  const ctx: Context = { sd, segments, digests: new Map(), pool, options };
  return verifyResult(sd.signerInfos.map((si) => verifySigner(si, ctx)));
}

/**
 * A SignerInfo's result. Several certificates can answer to one identifier
 * (a renewal keeps the subjectKeyIdentifier; a message may carry a stale
 * copy): the first that checks out wins, else the first found is reported.
 */
function verifySigner(si: SignerInfo, ctx: Context): SignerResult {
  const candidates = ctx.pool.filter((c) => identifies(si.sid, c));
  if (candidates.length <= 1) return verifyWith(si, candidates[0], ctx);
  let first: SignerResult | undefined;
  for (const c of candidates) {
    const r = verifyWith(si, c, ctx);
    if (r.reasons.length === 0) return r;
    first ??= r;
  }
  return first!;
}

function verifyWith(si: SignerInfo, certificate: Certificate | undefined, ctx: Context): SignerResult {
  const reasons = new Set<SignerReason>();
  let chain: readonly ChainStep[] = [];

  let scheme: SignatureScheme | undefined;
  let hash: HashName | undefined;
  try {
    hash = hashFromOid(si.digestAlgorithm.algorithm);
    scheme = signatureScheme(si.signatureAlgorithm, si.digestAlgorithm.algorithm);
  } catch (e) {
    if (!(e instanceof KeyfleetError)) throw e;
    reasons.add('unsupported-algorithm');
  }
  // Weak digests are reported, and the signature is still checked (the result says both).
  if (hash === 'md5' || hash === 'sha1' || scheme?.weak) reasons.add('weak-algorithm');

  if (!certificate) reasons.add('signer-certificate-missing');
  if (hash !== undefined && scheme !== undefined) {
    if (si.signedAttrs) {
      // RFC 5652 §5.4: the messageDigest attribute binds the content; the signature covers the attributes.
      const md = si.signedAttrs.messageDigest;
      if (md === undefined || Buffer.compare(md, contentDigest(ctx, hash)) !== 0) reasons.add('digest-mismatch');
      // RFC 5652 §11.1: the contentType attribute must be present and name eContentType, else the
      // signature does not cover what the message claims to be.
      if (si.signedAttrs.contentType !== ctx.sd.contentType) reasons.add('bad-signature');
    }
    if (certificate) checkSignature(si, scheme, certificate, ctx, reasons);
  }

  if (certificate) {
    if (isWeakKey(certificate)) reasons.add('weak-algorithm');
    const path = validate(certificate, ctx);
    chain = path.chain;
    for (const r of path.reasons) reasons.add(r);
    const sender = ctx.options.senderAddress;
    if (sender !== undefined && !certificate.emailAddresses.includes(sender.trim().toLowerCase())) reasons.add('sender-mismatch');
  }

  return {
    certificate,
    emailAddresses: certificate?.emailAddresses ?? [],
    chain,
    signingTime: si.signedAttrs?.signingTime,
    digestAlgorithm: oidName(si.digestAlgorithm.algorithm),
    signatureAlgorithm: oidName(si.signatureAlgorithm.algorithm),
    reasons: [...reasons],
  };
}

/** RSA keys under 2048 bits are weak (issue 2); a key that cannot be loaded is caught by the signature check. */
function isWeakKey(certificate: Certificate): boolean {
  try {
    const bits = rsaKeyBits(certificate);
    return bits !== undefined && bits < 2048;
  } catch {
    return false;
  }
}

/** The content digest for `hash`, computed once per message whatever the number of signers. */
function contentDigest(ctx: Context, hash: HashName): Uint8Array {
  let d = ctx.digests.get(hash);
  if (!d) ctx.digests.set(hash, (d = digestSegments(hash, ctx.segments)));
  return d;
}

function checkSignature(si: SignerInfo, scheme: SignatureScheme, certificate: Certificate, ctx: Context, reasons: Set<SignerReason>): void {
  let key;
  try {
    key = certificate.publicKey;
  } catch (e) {
    if (!(e instanceof KeyfleetError)) throw e;
    reasons.add('unsupported-algorithm');
    return;
  }
  // Without signed attributes the signature is over the content itself (RFC 5652 §5.4); node:crypto
  // takes one buffer there, so a segmented content is joined (signers that omit attributes are rare).
  const data = si.signedAttrs ? signedAttributesForSignature(si.signedAttrs.tlv) : ctx.segments;
  if (!verifySignature(scheme, data, si.signature, key)) reasons.add('bad-signature');
}

function validate(certificate: Certificate, ctx: Context): PathResult {
  const { trustAnchors, crls, revocation, at } = ctx.options;
  return validatePath(certificate, {
    trustAnchors,
    intermediates: ctx.pool,
    purpose: 'smime-sign',
    ...(at !== undefined ? { at } : {}),
    ...(crls !== undefined ? { crls } : {}),
    ...(revocation !== undefined ? { revocation } : {}),
  });
}
