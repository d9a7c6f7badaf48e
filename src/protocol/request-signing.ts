/**
 * Signed device requests (docs/delivery.md "Device identity and request
 * signing"): the one canonical text both sides build, so the agent's
 * signature and the server's check cannot drift apart.
 *
 *   Keyfleet-Device: id=<deviceId>, ts=<unix ms>, nonce=<base64url>, sig=<base64url>
 *   signed text: KEYFLEET-DEVICE-1 \n METHOD \n path?query \n ts \n nonce \n hex SHA-256(body)
 *
 * ECDSA P-256 with SHA-256, DER signature, by the device identity key.
 */
import { createHash, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

export const DEVICE_AUTH_HEADER = 'keyfleet-device';
const LABEL = 'KEYFLEET-DEVICE-1';
/** How far a request's timestamp may be from the server's clock. */
export const SIGNATURE_WINDOW_MS = 5 * 60_000;

export interface DeviceAuthorization {
  readonly deviceId: string;
  readonly timestamp: number;
  readonly nonce: string;
  readonly signature: Uint8Array;
}

export function signedText(method: string, pathAndQuery: string, timestamp: number, nonce: string, body: Uint8Array | string | undefined): Buffer {
  const digest = createHash('sha256').update(body ?? '').digest('hex');
  return Buffer.from(`${LABEL}\n${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${nonce}\n${digest}`, 'utf8');
}

/** The header value for one request, signed now by `key`. */
export function signRequest(deviceId: string, key: KeyObject, method: string, pathAndQuery: string, body?: Uint8Array | string, now: number = Date.now()): string {
  const nonce = randomBytes(16).toString('base64url');
  const sig = sign('sha256', signedText(method, pathAndQuery, now, nonce, body), key);
  return `id=${deviceId}, ts=${now}, nonce=${nonce}, sig=${sig.toString('base64url')}`;
}

const FIELD = /^\s*(id|ts|nonce|sig)=([A-Za-z0-9_.\-]{1,512})\s*$/;

/** Parses the header; undefined when it is not exactly the four fields. */
export function parseAuthorization(header: string | undefined): DeviceAuthorization | undefined {
  if (header === undefined || header.length > 2048) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.split(',')) {
    const m = FIELD.exec(part);
    if (m === null || fields.has(m[1]!)) return undefined;
    fields.set(m[1]!, m[2]!);
  }
  const id = fields.get('id');
  const ts = fields.get('ts');
  const nonce = fields.get('nonce');
  const sig = fields.get('sig');
  if (id === undefined || ts === undefined || nonce === undefined || sig === undefined || !/^\d{1,15}$/.test(ts)) return undefined;
  return { deviceId: id, timestamp: Number(ts), nonce, signature: Buffer.from(sig, 'base64url') };
}

/** True when the signature over this request verifies under `publicKey`. */
export function verifyRequest(auth: DeviceAuthorization, publicKey: KeyObject, method: string, pathAndQuery: string, body: Uint8Array | string | undefined): boolean {
  try {
    return verify('sha256', signedText(method, pathAndQuery, auth.timestamp, auth.nonce, body), publicKey, auth.signature);
  } catch {
    return false;
  }
}
