/**
 * `keyfleet demo`'s "mail CA": the certificate authority that issued the
 * users' encryption certificates before Keyfleet came along (a company's
 * earlier S/MIME CA), made in memory with the CA's own certificate builder.
 * Its users' certificates reach Keyfleet the way an admin brings a key
 * history in: as PKCS#12 files with a password each.
 *
 * P-256 throughout (encryption by ECDH key agreement, RFC 8550 §4.4.2):
 * a demo that makes a dozen keys should not spend its time on RSA.
 */
import { type KeyObject, createPublicKey, generateKeyPair as generateKeyPairCb, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { OID } from '../asn1/oids.ts';
import { buildCertificate, makeSigner, randomSerial } from '../ca/certificate-builder.ts';
import * as ext from '../ca/extensions.ts';
import { writePkcs12 } from '../pkcs12/index.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { encodeName } from '../x509/name.ts';
import { createSignatureAsync } from '../x509/signature.ts';

const generateKeyPair = promisify(generateKeyPairCb);
const DAY = 86_400_000;

export interface MailCredential {
  readonly label: string;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** The PKCS#12 file the admin imports, locked by `password`. */
  readonly pfx: Uint8Array;
  readonly password: string;
}

export interface MailCa {
  readonly certificate: Certificate;
  /** An encryption certificate for `email`, valid from `fromDays` to `toDays` (relative to now; negative is the past). */
  issueEncryption(label: string, commonName: string, email: string, fromDays: number, toDays: number): Promise<MailCredential>;
}

async function p256(): Promise<KeyObject> {
  return (await generateKeyPair('ec', { namedCurve: 'prime256v1' })).privateKey;
}

function spkiOf(key: KeyObject): Uint8Array {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}

export async function createMailCa(commonName: string, now: Date = new Date()): Promise<MailCa> {
  const caKey = await p256();
  const caSpki = spkiOf(caKey);
  const caKeyId = ext.keyIdentifier(caSpki);
  const name = encodeName([['O', 'Demo Mail'], ['CN', commonName]]);
  const signer = makeSigner(createPublicKey(caKey), (scheme, data) => createSignatureAsync(scheme, data, caKey));
  const certificate = decodeCertificate(
    await buildCertificate(
      {
        serialNumber: randomSerial(),
        issuer: name,
        subject: name,
        // Older than every certificate it issued, the expired one included.
        notBefore: new Date(now.getTime() - 5 * 365 * DAY),
        notAfter: new Date(now.getTime() + 10 * 365 * DAY),
        spki: caSpki,
        extensions: [ext.basicConstraints(true), ext.keyUsage(['keyCertSign', 'cRLSign']), ext.subjectKeyIdentifier(caKeyId)],
      },
      signer,
    ),
  );
  return {
    certificate,
    async issueEncryption(label, cn, email, fromDays, toDays) {
      const key = await p256();
      const spki = spkiOf(key);
      const der = await buildCertificate(
        {
          serialNumber: randomSerial(),
          issuer: name,
          subject: encodeName([['CN', cn]]),
          notBefore: new Date(now.getTime() + fromDays * DAY),
          notAfter: new Date(now.getTime() + toDays * DAY),
          spki,
          extensions: [
            ext.basicConstraints(false),
            ext.keyUsage(['keyAgreement']),
            ext.extKeyUsage([OID.emailProtection]),
            ext.subjectKeyIdentifier(ext.keyIdentifier(spki)),
            ext.authorityKeyIdentifier(caKeyId),
            ext.subjectAltName({ emails: [email] })!,
          ],
        },
        signer,
      );
      const cert = decodeCertificate(der);
      const password = randomBytes(12).toString('base64url');
      const pfx = writePkcs12([{ key, certificate: cert, chain: [certificate], friendlyName: `${cn} (${label})` }], password);
      return { label, certificate: cert, key, pfx, password };
    },
  };
}
