/**
 * Object identifiers SCEP needs that src/asn1/oids.ts does not define
 * (reported to the lead rather than added there).
 */
export const SCEP_OID = {
  // RFC 8894 §3.2.1: id-VeriSign pki-attributes (2.16.840.1.113733.1.9.x)
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  // PKCS#9 (RFC 2985 §5.4): attributes of a PKCS#10 request
  challengePassword: '1.2.840.113549.1.9.7',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;
