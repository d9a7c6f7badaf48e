/** The SCEP attribute OIDs (RFC 8894 §3.2.1) and PKCS#9 request attributes, by their RFC names. */
import { OID } from '../asn1/oids.ts';

export const SCEP_OID = {
  messageType: OID.scepMessageType,
  pkiStatus: OID.scepPkiStatus,
  failInfo: OID.scepFailInfo,
  senderNonce: OID.scepSenderNonce,
  recipientNonce: OID.scepRecipientNonce,
  transactionID: OID.scepTransactionID,
  challengePassword: OID.challengePassword,
  extensionRequest: OID.extensionRequest,
} as const;
