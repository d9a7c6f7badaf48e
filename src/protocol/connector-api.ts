/**
 * The PFX connector API's JSON shapes (docs/delivery.md "Imported
 * certificates: the connector"). The connector authenticates with its
 * bearer credential (kfc_…) and states its version on every request.
 */

export const CONNECTOR_API = '/connector/v1';
export const CONNECTOR_VERSION_HEADER = 'keyfleet-connector-version';

export interface ClaimRequest {
  /** At most this many requests (1–100). */
  readonly max: number;
  /** Wait up to this long for work when there is none (0–30 s). */
  readonly waitSeconds?: number;
}

export interface ClaimedRequest {
  readonly requestId: string;
  /** Proves this lease when posting the result. */
  readonly claimToken: string;
  /** The lease ends here; after it the request may go to another connector. */
  readonly leaseExpiresAt: string;
  readonly deviceId: string;
  /** The device identity certificate (DER, base64): the recipient. */
  readonly deviceCertificate: string;
  readonly pfx: {
    readonly id: string;
    readonly thumbprint: string;
    readonly paddingScheme: string;
    /** The PFX, still locked by its password (base64). */
    readonly encryptedPfxBlob: string;
    /** The password, RSA-OAEP encrypted to the connector's key (base64). */
    readonly encryptedPfxPassword: string;
  };
}

export interface ClaimResponse {
  readonly requests: readonly ClaimedRequest[];
}

/** The largest delivery payload (DER AuthEnvelopedData) the server accepts; a certificate and key make a few KiB. */
export const MAX_RESULT_PAYLOAD = 64 * 1024;

export type ResultRequest =
  | { readonly claimToken: string; readonly payload: string }
  | { readonly claimToken: string; readonly error: { readonly code: string; readonly detail: string } };

/**
 * Why a connector could not re-wrap a request: the `error.code` of a
 * ResultRequest. Stable strings, so the admin's view and the device's
 * status can say what went wrong without the connector's logs.
 */
export const REWRAP_ERROR_CODES = [
  /** The password does not decrypt under this connector's key (another connector's key, or damaged). */
  'password-undecryptable',
  /** The padding scheme is not one of oaepSha256/384/512. */
  'padding-scheme-unsupported',
  /** The decrypted password does not open the PFX. */
  'pfx-password-wrong',
  /** The PFX is not PKCS#12, too large, or uses an algorithm the connector does not run. */
  'pfx-unreadable',
  /** No key in the PFX has a certificate with the request's thumbprint. */
  'thumbprint-not-found',
  /** The device certificate cannot be parsed or cannot receive a key by ECDH. */
  'device-certificate-unusable',
  /** Anything else (a bug): the detail says no more than that. */
  'rewrap-failed',
] as const;
export type RewrapErrorCode = (typeof REWRAP_ERROR_CODES)[number];
