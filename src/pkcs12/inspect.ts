/**
 * What a PKCS#12 file holds, without its password: the MAC algorithm and
 * the bags of the outer structure. Encrypted bags (EncryptedData) are listed
 * as one entry with their scheme, since their contents need the password.
 */
import { KeyfleetError } from '../errors.ts';
import { oidName } from '../asn1/oids.ts';
import type { AlgorithmIdentifier } from '../x509/algorithm.ts';
import { type SafeBag, bagName, decodeEncryptedPrivateKeyInfo, decodeSafeContents } from './bags.ts';
import { P12 } from './oids.ts';
import { decodeEncryptionScheme } from './pbe.ts';
import { decodeAuthenticatedSafe, decodePfx } from './pfx.ts';
import { guarded } from './read.ts';

export interface Pkcs12BagSummary {
  /** RFC 7292 bag name ("certBag", "pkcs8ShroudedKeyBag", …) or "encryptedData" for a password-encrypted SafeContents. */
  readonly type: string;
  /** Encryption scheme by RFC name, for shrouded key bags and encryptedData. */
  readonly encryption?: string;
  readonly iterations?: number;
  readonly friendlyName?: string;
}

export interface Pkcs12Inspection {
  readonly macAlgorithm?: string;
  readonly iterations?: number;
  readonly bags: Pkcs12BagSummary[];
}

export function inspectPkcs12(der: Uint8Array): Pkcs12Inspection {
  return guarded(() => {
    const pfx = decodePfx(der);
    const bags: Pkcs12BagSummary[] = [];
    for (const content of decodeAuthenticatedSafe(pfx.authSafe)) {
      if (content.kind === 'data') summarise(decodeSafeContents(content.safeContents), bags, 0);
      else if (content.kind === 'encryptedData') bags.push({ type: 'encryptedData', ...describe(content.algorithm) });
      else bags.push({ type: oidName(content.contentType) });
    }
    return { ...(pfx.macData ? { macAlgorithm: pfx.macData.algorithm, iterations: pfx.macData.iterations } : {}), bags };
  });
}

function summarise(safeBags: readonly SafeBag[], out: Pkcs12BagSummary[], depth: number): void {
  for (const bag of safeBags) {
    const name = bag.friendlyName !== undefined ? { friendlyName: bag.friendlyName } : {};
    if (bag.bagId === P12.pkcs8ShroudedKeyBag) {
      out.push({ type: bagName(bag.bagId), ...describe(decodeEncryptedPrivateKeyInfo(bag.value).encryptionAlgorithm), ...name });
    } else if (bag.bagId === P12.safeContentsBag) {
      if (depth >= 4) throw new KeyfleetError('KF_ASN1_LIMIT', 'PKCS#12 safeContentsBag nesting too deep');
      summarise(decodeSafeContents(bag.value), out, depth + 1);
    } else {
      out.push({ type: bagName(bag.bagId), ...name });
    }
  }
}

/** The scheme's name and iterations; an unsupported scheme is still named. */
function describe(alg: AlgorithmIdentifier): { encryption: string; iterations?: number } {
  try {
    const scheme = decodeEncryptionScheme(alg);
    return { encryption: scheme.name, iterations: scheme.iterations };
  } catch (e) {
    if (e instanceof KeyfleetError && e.code === 'KF_CMS_UNSUPPORTED') return { encryption: oidName(e.detail ?? alg.algorithm) };
    throw e;
  }
}
