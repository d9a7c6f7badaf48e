/**
 * Reading PKCS#12 files (RFC 7292): check the MAC, open every bag, and pair
 * each private key with its certificate.
 *
 * A wrong password must never yield garbage keys. With a MAC, the MAC says
 * so before anything is decrypted. Without one, a wrong password shows as
 * bad CBC padding or as plaintext that is not the DER structure expected
 * (SafeContents, PrivateKeyInfo); both are reported as a wrong password.
 */
import { type KeyObject, createPrivateKey } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { SequenceReader, Tag, parse, raw } from '../asn1/reader.ts';
import { oidName } from '../asn1/oids.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { decodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import { type BagAttributes, type SafeBag, decodeCertBag, decodeEncryptedPrivateKeyInfo, decodeSafeContents } from './bags.ts';
import { DEFAULT_MAX_ITERATIONS, DEFAULT_MAX_TOTAL_ITERATIONS, IterationBudget } from './kdf.ts';
import { P12 } from './oids.ts';
import { type EncryptionScheme, type PasswordForms, decodeEncryptionScheme, passwordForms } from './pbe.ts';
import { decodeAuthenticatedSafe, decodePfx } from './pfx.ts';
import { certifiesKey, spkiOf } from './public-key.ts';

export interface Pkcs12Key {
  readonly key: KeyObject;
  /** The certificate for the key, when the file has one. */
  readonly certificate: Certificate | undefined;
  readonly friendlyName?: string;
  readonly localKeyId?: Uint8Array;
}

export interface Pkcs12Contents {
  readonly keys: Pkcs12Key[];
  /** Every certificate in the file (keys' certificates and chains), in file order, without duplicates. */
  readonly certificates: Certificate[];
  /** "sha1", "sha256", … or "PBMAC1/…"; undefined when the file has no MAC. */
  readonly macAlgorithm?: string;
  /** The encryption schemes met, by RFC name, each once (for `p12 inspect`). */
  readonly encryption: string[];
}

export interface Pkcs12ReadOptions {
  /** Refuse any single key derivation with more iterations (default 10,000,000). */
  readonly maxIterations?: number;
  /** Refuse a file whose derivations add up to more iterations (default 20,000,000). */
  readonly maxTotalIterations?: number;
}

/** safeContentsBag nesting beyond this is refused; real files nest at most once. */
const MAX_BAG_NESTING = 4;

function wrongPassword(): KeyfleetError {
  return new KeyfleetError('KF_PKCS12_BAD_PASSWORD', 'wrong password or damaged PKCS#12 file');
}

interface ReadContext {
  readonly password: PasswordForms;
  readonly budget: IterationBudget;
  readonly macVerified: boolean;
  readonly encryption: Set<string>;
  readonly keys: ({ key: KeyObject } & BagAttributes)[];
  readonly certs: ({ cert: Certificate } & BagAttributes)[];
}

/**
 * Reads a PKCS#12 file with its password. Throws KF_PKCS12_BAD_PASSWORD for a wrong
 * password (or a damaged file), KF_ASN1_MALFORMED / KF_CMS_MALFORMED for
 * input that is not PKCS#12, KF_CMS_UNSUPPORTED for algorithms we do not run.
 */
export function readPkcs12(der: Uint8Array, password: string, options: Pkcs12ReadOptions = {}): Pkcs12Contents {
  return guarded(() => {
    const budget = new IterationBudget(options.maxIterations ?? DEFAULT_MAX_ITERATIONS, options.maxTotalIterations ?? DEFAULT_MAX_TOTAL_ITERATIONS);
    const pfx = decodePfx(der);
    let forms = passwordForms(password);
    if (pfx.macData) {
      const verified = pfx.macData.verify(pfx.authSafe, forms, budget);
      if (!verified) throw wrongPassword();
      forms = verified;
    }
    const ctx: ReadContext = { password: forms, budget, macVerified: pfx.macData !== undefined, encryption: new Set(), keys: [], certs: [] };
    for (const content of decodeAuthenticatedSafe(pfx.authSafe)) {
      if (content.kind === 'data') {
        readBags(decodeSafeContents(content.safeContents), ctx, 0);
      } else if (content.kind === 'encryptedData') {
        const scheme = decodeEncryptionScheme(content.algorithm);
        ctx.encryption.add(scheme.name);
        const bags = decryptWith(scheme, content.encryptedContent, ctx, 'an EncryptedData SafeContents', (plain) => decodeSafeContents(parse(plain)));
        readBags(bags, ctx, 0);
      } else {
        throw new KeyfleetError('KF_CMS_UNSUPPORTED', `PKCS#12 content of type ${oidName(content.contentType)} is not supported`, { detail: content.contentType });
      }
    }
    const certificates = [...new Map(ctx.certs.map((c) => [c.cert.fingerprint256, c.cert])).values()];
    return {
      keys: ctx.keys.map((k) => pair(k, ctx.certs)),
      certificates,
      ...(pfx.macData ? { macAlgorithm: pfx.macData.algorithm } : {}),
      encryption: [...ctx.encryption],
    };
  });
}

/** Coded errors pass through; anything else (a bug, or a crypto edge case) becomes a coded error. */
export function guarded<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof KeyfleetError) throw e;
    throw new KeyfleetError('KF_KEY_INVALID', 'PKCS#12 file cannot be read', { cause: e });
  }
}

function readBags(bags: readonly SafeBag[], ctx: ReadContext, depth: number): void {
  for (const bag of bags) {
    const attributes: BagAttributes = { ...(bag.friendlyName !== undefined ? { friendlyName: bag.friendlyName } : {}), ...(bag.localKeyId ? { localKeyId: bag.localKeyId } : {}) };
    switch (bag.bagId) {
      case P12.keyBag:
        ctx.keys.push({ key: privateKey(checkPrivateKeyInfo(raw(bag.value))), ...attributes });
        break;
      case P12.pkcs8ShroudedKeyBag: {
        const info = decodeEncryptedPrivateKeyInfo(bag.value);
        const scheme = decodeEncryptionScheme(info.encryptionAlgorithm);
        ctx.encryption.add(scheme.name);
        const pkcs8 = decryptWith(scheme, info.encryptedData, ctx, 'a shrouded key bag', checkPrivateKeyInfo);
        ctx.keys.push({ key: privateKey(pkcs8), ...attributes });
        break;
      }
      case P12.certBag: {
        const der = decodeCertBag(bag.value);
        if (der) ctx.certs.push({ cert: decodeCertificate(der), ...attributes });
        break;
      }
      case P12.safeContentsBag:
        if (depth >= MAX_BAG_NESTING) throw new KeyfleetError('KF_ASN1_LIMIT', 'PKCS#12 safeContentsBag nesting too deep');
        readBags(decodeSafeContents(bag.value), ctx, depth + 1);
        break;
      default:
        // crlBag, secretBag and private bag types carry nothing Keyfleet uses.
        break;
    }
  }
}

/**
 * Decrypts with each password form the scheme may have used and returns the
 * first plaintext that `accept` takes; none means a wrong password.
 */
function decryptWith<T>(scheme: EncryptionScheme, ciphertext: Uint8Array, ctx: ReadContext, what: string, accept: (plain: Uint8Array) => T): T {
  for (const plain of scheme.decrypt(ciphertext, ctx.password, ctx.budget)) {
    try {
      return accept(plain);
    } catch (e) {
      if (!(e instanceof KeyfleetError)) throw e;
    }
  }
  if (!ctx.macVerified) throw wrongPassword();
  throw new KeyfleetError('KF_KEY_INVALID', `${what} cannot be decrypted with the password that checks the MAC: the PKCS#12 file is damaged or uses a second password`);
}

/**
 * A structural check of PrivateKeyInfo (RFC 5958 §2: version, algorithm,
 * privateKey OCTET STRING) returning the algorithm OID. Plaintext from a
 * wrong key fails it, so a key type Node cannot load is not mistaken for a
 * wrong password.
 */
function privateKeyAlgorithm(pkcs8: Uint8Array): string {
  const r = new SequenceReader(parse(pkcs8), 'PrivateKeyInfo');
  r.next(Tag.integer);
  const algorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence)).algorithm;
  r.next(Tag.octetString);
  return algorithm;
}

function checkPrivateKeyInfo(pkcs8: Uint8Array): Uint8Array {
  privateKeyAlgorithm(pkcs8);
  return pkcs8;
}

function privateKey(pkcs8: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch (e) {
    const algorithm = privateKeyAlgorithm(pkcs8);
    throw new KeyfleetError('KF_KEY_INVALID', `PKCS#12 private key of type ${oidName(algorithm)} cannot be loaded`, { cause: e, detail: algorithm });
  }
}

/**
 * Pairs a key with its certificate. Only a certificate for the same public
 * key qualifies (a file cannot pair a key with someone else's certificate);
 * among those, the one with the same localKeyId wins, since a renewed
 * certificate may keep its key (RFC 7292 leaves the pairing to localKeyId).
 */
function pair(k: { key: KeyObject } & BagAttributes, certs: ReadContext['certs']): Pkcs12Key {
  const spki = spkiOf(k.key);
  const candidates = certs.filter((c) => certifiesKey(c.cert, spki));
  const id = k.localKeyId;
  const chosen = (id && candidates.find((c) => c.localKeyId !== undefined && Buffer.compare(c.localKeyId, id) === 0)) || candidates[0];
  const friendlyName = k.friendlyName ?? chosen?.friendlyName;
  return {
    key: k.key,
    certificate: chosen?.cert,
    ...(friendlyName !== undefined ? { friendlyName } : {}),
    ...(k.localKeyId ? { localKeyId: k.localKeyId } : {}),
  };
}
