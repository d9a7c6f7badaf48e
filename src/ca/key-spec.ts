/**
 * The key types the CA generates and accepts: RSA 2048/3072/4096 and the
 * NIST curves P-256/P-384 (the S/MIME set of RFC 8551 §2.2 and the CA/B
 * Forum S/MIME baseline requirements §6.1.5, which also excludes RSA below
 * 2048 bits).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';

export const KeySpecs = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'p-256', 'p-384'] as const;
export type KeySpec = (typeof KeySpecs)[number];

export function isKeySpec(value: unknown): value is KeySpec {
  return typeof value === 'string' && (KeySpecs as readonly string[]).includes(value);
}

const curveOf: Record<string, KeySpec> = { prime256v1: 'p-256', secp384r1: 'p-384' };

/**
 * The spec a key (public or private) matches, or a description of what it
 * is when it matches none, for the error message.
 */
export function describeKey(key: KeyObject): { readonly spec: KeySpec | undefined; readonly description: string } {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === 'rsa') {
    const bits = details?.modulusLength ?? 0;
    const e = details?.publicExponent ?? 0n;
    const description = `RSA-${bits}`;
    // An even or tiny public exponent is a broken key whatever its size.
    if (e < 3n || e % 2n === 0n) return { spec: undefined, description: `${description} with public exponent ${e}` };
    const spec = `rsa-${bits}`;
    return { spec: isKeySpec(spec) ? spec : undefined, description };
  }
  if (type === 'ec') {
    const curve = details?.namedCurve ?? 'unknown curve';
    return { spec: curveOf[curve], description: `EC ${curve}` };
  }
  return { spec: undefined, description: type ?? 'unknown key type' };
}

/** A new key pair of `spec` (node:crypto; RSA public exponent 65537). */
export function generateKeyPair(spec: KeySpec): { readonly privateKey: KeyObject; readonly publicKey: KeyObject } {
  switch (spec) {
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)), publicExponent: 0x10001 });
    case 'p-256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'p-384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    default:
      throw new KeyfleetError('KF_KEY_INVALID', `unsupported key type ${String(spec)}`);
  }
}
