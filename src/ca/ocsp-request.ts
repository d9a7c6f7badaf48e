/**
 * Decoding an OCSPRequest (RFC 6960 §4.1.1) on the responder side, with the
 * limits that keep a hostile request from costing more than its own size.
 * Any failure is a KeyfleetError, which the responder answers with
 * malformedRequest.
 *
 *   OCSPRequest ::= SEQUENCE {
 *     tbsRequest                  TBSRequest,
 *     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
 *   TBSRequest ::= SEQUENCE {
 *     version             [0]     EXPLICIT Version DEFAULT v1,
 *     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
 *     requestList                 SEQUENCE OF Request,
 *     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
 *   Request ::= SEQUENCE {
 *     reqCert                     CertID,
 *     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
import { KeyfleetError } from '../errors.ts';
import { SequenceReader, Tag, children, parse, raw, readSmallInt } from '../asn1/reader.ts';
import { type CertId, type OcspExtension, MAX_NONCE_LENGTH, OcspOid, decodeCertId, decodeExtensions, nonceValue } from '../x509/ocsp-client.ts';

export interface OcspSingleRequest {
  readonly certId: CertId;
  readonly extensions: readonly OcspExtension[];
}

export interface OcspRequest {
  /** The GeneralName as received, when the client named itself (not used for authorisation). */
  readonly requestorName: Uint8Array | undefined;
  readonly requests: readonly OcspSingleRequest[];
  readonly extensions: readonly OcspExtension[];
  /** The nonce extension's extnValue as received: echoed byte for byte (§4.4.1). */
  readonly nonceExtnValue: Uint8Array | undefined;
  /** Whether optionalSignature was present (it is not checked: this responder answers anyone). */
  readonly signed: boolean;
}

export interface OcspRequestLimits {
  readonly maxBytes: number;
  readonly maxCertIds: number;
}

function malformed(message: string): KeyfleetError {
  return new KeyfleetError('KF_ASN1_MALFORMED', `OCSPRequest: ${message}`);
}

/**
 * Unrecognised extensions are ignored unless critical (§4.4: "unrecognized
 * extensions MUST be ignored (unless they have the critical flag set and
 * are not understood)"); a critical one we do not understand is refused.
 */
function checkCritical(extensions: readonly OcspExtension[], understood: ReadonlySet<string>): void {
  for (const e of extensions) if (e.critical && !understood.has(e.extnID)) throw malformed(`unsupported critical extension ${e.extnID}`);
}

const requestExtensionsUnderstood = new Set<string>([OcspOid.nonce]);
const none = new Set<string>();

export function decodeOcspRequest(bytes: Uint8Array, limits: OcspRequestLimits): OcspRequest {
  if (bytes.length > limits.maxBytes) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `OCSPRequest larger than ${limits.maxBytes} bytes`);
  const outer = new SequenceReader(parse(bytes), 'OCSPRequest');
  const tbs = new SequenceReader(outer.next(Tag.sequence), 'TBSRequest');
  const signature = outer.optionalContext(0);
  outer.end();

  const version = tbs.optionalContext(0);
  if (version && readSmallInt(new SequenceReader(version, 'version').next(Tag.integer)) !== 0) throw malformed('unsupported version');
  const requestor = tbs.optionalContext(1);
  const requestorName = requestor ? raw(new SequenceReader(requestor, 'requestorName').next()) : undefined;
  const list = tbs.next(Tag.sequence);
  const ext = tbs.optionalContext(2);
  tbs.end();

  const items = children(list);
  if (items.length === 0) throw malformed('empty requestList');
  if (items.length > limits.maxCertIds) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `more than ${limits.maxCertIds} CertIDs in one request`);
  const requests = items.map((item) => {
    const r = new SequenceReader(item, 'Request');
    const certId = decodeCertId(r.next(Tag.sequence));
    const singleExt = r.optionalContext(0);
    r.end();
    if (certId.serialNumber.length > 64) throw malformed('serial number too long');
    const extensions = singleExt ? decodeExtensions(new SequenceReader(singleExt, 'singleRequestExtensions').next(Tag.sequence)) : [];
    checkCritical(extensions, none);
    return { certId, extensions };
  });

  const extensions = ext ? decodeExtensions(new SequenceReader(ext, 'requestExtensions').next(Tag.sequence)) : [];
  checkCritical(extensions, requestExtensionsUnderstood);
  const nonces = extensions.filter((e) => e.extnID === OcspOid.nonce);
  if (nonces.length > 1) throw malformed('more than one nonce');
  const nonceExtnValue = nonces[0]?.extnValue;
  if (nonceExtnValue !== undefined) {
    // RFC 9654 §2.1: a nonce of 0 or more than 128 octets is a malformed request.
    const n = nonceValue(nonceExtnValue).length;
    if (n < 1 || n > MAX_NONCE_LENGTH) throw malformed(`nonce of ${n} octets`);
  }
  return { requestorName, requests, extensions, nonceExtnValue, signed: signature !== undefined };
}
