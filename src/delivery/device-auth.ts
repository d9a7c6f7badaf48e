/**
 * Who is calling the device API: the signed-request check of
 * docs/delivery.md. The device is named by the signature's key id and
 * proven by the signature under the identity certificate the CA issued it
 * at enrolment; a URL never names the device, so a device can only ever
 * reach its own state.
 *
 * Replays: a signed request is good for SIGNATURE_WINDOW_MS around the
 * server's clock, and each nonce once within it. The nonce memory is per
 * process: behind several workers a replay could reach another worker
 * within the window, so only idempotent reads and reports whose state
 * machine refuses a repeated transition are safe to accept that way — which
 * is all the device API has.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { SIGNATURE_WINDOW_MS, parseAuthorization, verifyRequest } from '../protocol/request-signing.ts';
import type { DeliveryLookup } from '../store/delivery.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';
import { decodeCertificate } from '../x509/certificate.ts';

export interface AuthenticatedDevice {
  readonly tenantId: string;
  readonly device: ManagedDeviceRecord;
}

export interface SignedRequest {
  readonly header: string | undefined;
  readonly method: string;
  /** Path and query exactly as sent. */
  readonly url: string;
  readonly body: Uint8Array | undefined;
}

/** Devices that may still call: a retired or wiped one has nothing left to ask. */
const CALLABLE = new Set(['managed', 'retirePending', 'wipePending']);
const NONCE_LIMIT = 200_000;
const KEY_CACHE_LIMIT = 100_000;

export class DeviceAuthenticator {
  readonly #lookup: DeliveryLookup;
  readonly #clock: () => number;
  /** nonce → when it may be forgotten. */
  readonly #nonces = new Map<string, number>();
  /** identity thumbprint → its public key, so a check-in parses no certificate. */
  readonly #keys = new Map<string, KeyObject>();

  constructor(lookup: DeliveryLookup, clock: () => number = Date.now) {
    this.#lookup = lookup;
    this.#clock = clock;
  }

  /** The device behind a signed request, or KF_UNAUTHENTICATED with one message for every reason. */
  async authenticate(request: SignedRequest): Promise<AuthenticatedDevice> {
    const refused = (why: string) => new KeyfleetError('KF_UNAUTHENTICATED', `a valid device signature is required (${why})`);
    const auth = parseAuthorization(request.header);
    if (auth === undefined) throw refused('Keyfleet-Device header missing or malformed');
    const now = this.#clock();
    if (Math.abs(now - auth.timestamp) > SIGNATURE_WINDOW_MS) throw refused('timestamp outside the allowed window');
    const found = await this.#lookup.findDevice(auth.deviceId);
    if (found === undefined || found.device.identityThumbprint === undefined) throw refused('unknown device');
    if (!CALLABLE.has(found.device.managementState)) throw refused(`device is ${found.device.managementState}`);
    const key = await this.#publicKey(found.tenantId, found.device);
    if (key === undefined) throw refused('unknown device');
    if (!verifyRequest(auth, key, request.method, request.url, request.body)) throw refused('signature does not verify');
    // Remembered only once the signature holds: an attacker cannot fill the memory with junk nonces.
    const nonceKey = `${auth.deviceId}\u0000${auth.nonce}`;
    this.#forgetExpired(now);
    if (this.#nonces.has(nonceKey)) throw refused('request replayed');
    this.#nonces.set(nonceKey, auth.timestamp + SIGNATURE_WINDOW_MS);
    return found;
  }

  /** The key of the device's identity certificate, parsed once; the certificate is read only then. */
  async #publicKey(tenantId: string, device: ManagedDeviceRecord): Promise<KeyObject | undefined> {
    const thumbprint = device.identityThumbprint!;
    let key = this.#keys.get(thumbprint);
    if (key === undefined) {
      const der = await this.#lookup.findIdentityCertificate(tenantId, device.id);
      if (der === undefined) return undefined;
      const certificate = decodeCertificate(der);
      // The thumbprint names the key in the cache: it must be this certificate's.
      if (certificate.fingerprint256 !== thumbprint) return undefined;
      key = createPublicKey({ key: Buffer.from(certificate.spki), format: 'der', type: 'spki' });
      if (this.#keys.size >= KEY_CACHE_LIMIT) this.#keys.clear();
      this.#keys.set(thumbprint, key);
    }
    return key;
  }

  #forgetExpired(now: number): void {
    // Insertion order is roughly expiry order: drop from the front while expired. At the limit the oldest
    // live nonces go too (their requests are the furthest into the window): constant time per request,
    // where a scan of a full map cost every request 200,000 steps (bench:delivery's sustained idle run).
    for (const [k, until] of this.#nonces) {
      if (until > now && this.#nonces.size < NONCE_LIMIT) break;
      this.#nonces.delete(k);
    }
  }

}
