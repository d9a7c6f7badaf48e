/**
 * The catalogue of Keyfleet's coded errors. Every error a user can see
 * carries one of these codes; docs/errors.md has a row for each (a test keeps
 * the two in step). The HTTP layer renders them as RFC 9457 problem+json
 * using `status`; the CLI prints `code: message` on one line.
 */
export const errorCatalogue = {
  KF_ASN1_MALFORMED: { status: 400, title: 'Malformed ASN.1 data' },
  KF_ASN1_LIMIT: { status: 413, title: 'ASN.1 data exceeds a size or depth limit' },
  KF_CERT_INVALID: { status: 400, title: 'Certificate cannot be parsed' },
  KF_KEY_INVALID: { status: 400, title: 'Private or public key cannot be used' },
  KF_CMS_MALFORMED: { status: 400, title: 'CMS structure is malformed' },
  KF_CMS_UNSUPPORTED: { status: 400, title: 'CMS algorithm or structure is not supported' },
  KF_CMS_NO_MATCHING_KEY: { status: 400, title: 'No private key matches any recipient' },
  KF_CMS_DECRYPT_FAILED: { status: 400, title: 'Decryption failed: the message is damaged' },
  KF_MIME_MALFORMED: { status: 400, title: 'MIME message is malformed' },
  KF_MIME_NOT_SMIME: { status: 400, title: 'Message is not an S/MIME message of the expected kind' },
  KF_CONFLICT: { status: 409, title: 'The resource already exists or was changed concurrently' },
  KF_NOT_FOUND: { status: 404, title: 'No such resource' },
  KF_STORE_UNAVAILABLE: { status: 503, title: 'The database cannot be reached' },
  KF_CA_NOT_INITIALISED: { status: 409, title: 'The certificate authority has not been initialised' },
  KF_MASTER_KEY: { status: 500, title: 'The key-encryption key is missing or wrong' },
  KF_PKCS12_BAD_PASSWORD: { status: 400, title: 'Wrong password or damaged PKCS#12 file' },
  KF_OCSP_INVALID: { status: 502, title: 'The OCSP response cannot be trusted or does not answer the question' },
  KF_LISTEN_FAILED: { status: 500, title: 'The server cannot listen on the address given' },
  KF_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body has a media type this endpoint does not accept' },
  KF_METHOD_NOT_ALLOWED: { status: 405, title: 'The endpoint does not allow this method' },
  KF_INPUT_TOO_LARGE: { status: 413, title: 'Input exceeds the size limit' },
  KF_USAGE: { status: 400, title: 'Invalid command usage' },
  KF_UNAUTHENTICATED: { status: 401, title: 'A valid API token is required' },
  KF_FORBIDDEN: { status: 403, title: 'The API token\'s role does not allow this' },
  KF_SERVICE_UNREACHABLE: { status: 503, title: 'The Keyfleet service cannot be reached' },
  KF_GROUP_CYCLE: { status: 409, title: 'The membership would make a group contain itself' },
  KF_VPP_NOT_CONFIGURED: { status: 409, title: 'No Apple VPP token is configured for this tenant' },
  KF_VPP_SOURCE_INVALID: { status: 502, title: 'The Apple VPP asset source cannot be read or gave an unusable answer' },
  KF_ENROLLMENT_REFUSED: { status: 403, title: 'The enrollment token is unknown, used or expired' },
  KF_DELIVERY_INVALID: { status: 400, title: 'A certificate delivery is not for this device or does not check out' },
  KF_CONNECTOR_OUTDATED: { status: 426, title: 'The PFX connector is older than the minimum version' },
  KF_MAIL_SEND_FAILED: { status: 502, title: 'The notification mail could not be handed to the SMTP server' },
  KF_KEYSTORE_UNREADABLE: { status: 500, title: 'The device keystore cannot be opened' },
  KF_SMIME_CERTIFICATE_UNAVAILABLE: { status: 409, title: 'No valid certificate for this S/MIME operation' },
  KF_SMIME_SETTING_LOCKED: { status: 403, title: 'The managed S/MIME settings do not allow this' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/**
 * An error with a stable code. `message` is safe to show to users; `cause`
 * (internal detail) is for logs only and never rendered to clients.
 */
export class KeyfleetError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable detail safe to show (e.g. an unsupported OID). */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeyfleetError';
    this.code = code;
    this.detail = options?.detail;
  }

  get status(): number {
    return errorCatalogue[this.code].status;
  }
}

export function isKeyfleetError(e: unknown, code?: ErrorCode): e is KeyfleetError {
  return e instanceof KeyfleetError && (code === undefined || e.code === code);
}
