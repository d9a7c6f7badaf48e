/** A certificate as the CLI and API show it in JSON. */
import type { Certificate } from './certificate.ts';
import { nameToString } from './name.ts';

export function certificateSummary(c: Certificate) {
  return {
    subject: nameToString(c.subject),
    issuer: nameToString(c.issuer),
    serialNumber: c.serialHex,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    sha256Fingerprint: c.fingerprint256,
  };
}
