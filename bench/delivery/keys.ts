/**
 * Keys made before anything is timed (issue 5: "the simulated devices' own
 * key generation excluded: pre-generate their keys"), on libuv's thread
 * pool so that both cores work:
 *
 * - one P-256 identity key per device, as every enrolled device has its own;
 * - RSA-2048 keys in a pool: the devices' SCEP signing keys and the
 *   imported encryption certificates' keys. RSA-2048 generation costs
 *   ~70 ms of CPU, so a key per device would make set-up take many minutes;
 *   no part of the server looks at whether it saw a public key before (the
 *   SCEP transaction id is random per request, bench/pki/scep.ts does the
 *   same), so sharing costs the server nothing.
 */
import { type KeyObject, generateKeyPair } from 'node:crypto';

/** At most this many generations queued on the thread pool at once (memory stays flat for 30,000 keys). */
const IN_FLIGHT = 64;

async function many(count: number, one: () => Promise<KeyObject>): Promise<KeyObject[]> {
  const out: KeyObject[] = new Array<KeyObject>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
  return out;
}

export function p256Keys(count: number): Promise<KeyObject[]> {
  return many(count, () => new Promise((resolve, reject) => generateKeyPair('ec', { namedCurve: 'P-256' }, (e, _pub, priv) => (e ? reject(e) : resolve(priv)))));
}

export function rsaKeys(count: number, bits = 2048): Promise<KeyObject[]> {
  return many(count, () => new Promise((resolve, reject) => generateKeyPair('rsa', { modulusLength: bits }, (e, _pub, priv) => (e ? reject(e) : resolve(priv)))));
}

/** PKCS#8 DER, base64: how keys travel to the fleet child in its plan file. */
export function exportKey(key: KeyObject): string {
  return key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}
