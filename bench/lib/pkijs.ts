/**
 * The same CMS work in PKI.js 4 (on Node's WebCrypto), for comparison:
 *
 * - sign: detached SignedData (like multipart/signed), RSASSA-PKCS1-v1_5
 *   with SHA-256, signed attributes contentType, signingTime and
 *   messageDigest, the signer's certificate included;
 * - verify: parse, check the signature and the chain to the root;
 * - encrypt/decrypt: EnvelopedData with AES-256-CBC and RSAES-OAEP-SHA-256.
 *   PKI.js cannot do PKCS#1 v1.5 key transport on Node's WebCrypto (which
 *   has no RSAES-PKCS1-v1_5), so it gets OAEP where we do PKCS#1 v1.5; the
 *   RSA private-key operation costs the same either way.
 *
 * PKI.js only produces and parses CMS: it does no MIME, no base64 and no
 * S/MIME headers, so per operation it does less work than our engine.
 * Keys are imported once, outside the loop, which is PKI.js's best case.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { CmsImpl, Iteration, Operation, PreparedFiles } from './impl.ts';
import type { BenchPki } from './pki.ts';

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_ENVELOPED_DATA = '1.2.840.113549.1.7.3';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SIGNING_TIME = '1.2.840.113549.1.9.5';

/** An ArrayBuffer holding exactly `bytes` (PKI.js wants ArrayBuffers, not views). */
function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function pkijsCertificate(path: string): pkijs.Certificate {
  return pkijs.Certificate.fromBER(arrayBuffer(new X509Certificate(readFileSync(path)).raw));
}

export async function pkijsImpl(pki: BenchPki): Promise<CmsImpl> {
  pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: globalThis.crypto }));
  const subtle = globalThis.crypto.subtle;
  const root = pkijsCertificate(pki.rootCert);
  const leaf = pkijsCertificate(pki.leafCert);
  const pkcs8 = createPrivateKey(readFileSync(pki.leafKey)).export({ format: 'der', type: 'pkcs8' });
  const signingKey = await subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  const decryptionKey = await subtle.importKey('pkcs8', pkcs8, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);

  async function sign(message: ArrayBuffer): Promise<Uint8Array> {
    const digest = await subtle.digest('SHA-256', message);
    const signedData = new pkijs.SignedData({
      version: 1,
      encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID_DATA }),
      signerInfos: [
        new pkijs.SignerInfo({
          version: 1,
          sid: new pkijs.IssuerAndSerialNumber({ issuer: leaf.issuer, serialNumber: leaf.serialNumber }),
          signedAttrs: new pkijs.SignedAndUnsignedAttributes({
            type: 0,
            attributes: [
              new pkijs.Attribute({ type: OID_CONTENT_TYPE, values: [new asn1js.ObjectIdentifier({ value: OID_DATA })] }),
              new pkijs.Attribute({ type: OID_SIGNING_TIME, values: [new asn1js.UTCTime({ valueDate: new Date() })] }),
              new pkijs.Attribute({ type: OID_MESSAGE_DIGEST, values: [new asn1js.OctetString({ valueHex: digest })] }),
            ],
          }),
        }),
      ],
      certificates: [leaf],
    });
    await signedData.sign(signingKey, 0, 'SHA-256', message);
    const contentInfo = new pkijs.ContentInfo({ contentType: OID_SIGNED_DATA, content: signedData.toSchema(true) });
    return new Uint8Array(contentInfo.toSchema().toBER());
  }

  async function verify(signed: ArrayBuffer, message: ArrayBuffer): Promise<Uint8Array> {
    const contentInfo = pkijs.ContentInfo.fromBER(signed);
    const signedData = new pkijs.SignedData({ schema: contentInfo.content });
    const ok = await signedData.verify({ signer: 0, data: message, trustedCerts: [root], checkChain: true });
    if (!ok) throw new Error('PKI.js: the bench SignedData does not verify');
    return new Uint8Array(message);
  }

  async function encrypt(message: ArrayBuffer): Promise<Uint8Array> {
    const envelopedData = new pkijs.EnvelopedData();
    envelopedData.addRecipientByCertificate(leaf, { oaepHashAlgorithm: 'SHA-256' });
    await envelopedData.encrypt({ name: 'AES-CBC', length: 256 } as Parameters<pkijs.EnvelopedData['encrypt']>[0], message);
    const contentInfo = new pkijs.ContentInfo({ contentType: OID_ENVELOPED_DATA, content: envelopedData.toSchema() });
    return new Uint8Array(contentInfo.toSchema().toBER());
  }

  async function decrypt(encrypted: ArrayBuffer): Promise<Uint8Array> {
    const contentInfo = pkijs.ContentInfo.fromBER(encrypted);
    const envelopedData = new pkijs.EnvelopedData({ schema: contentInfo.content });
    return new Uint8Array(await envelopedData.decrypt(0, { recipientCertificate: leaf, recipientPrivateKey: decryptionKey }));
  }

  const read = (path: string): ArrayBuffer => arrayBuffer(readFileSync(path));
  return {
    async prepare(files: PreparedFiles): Promise<void> {
      const message = read(files.message);
      writeFileSync(files.signed, await sign(message));
      writeFileSync(files.encrypted, await encrypt(message));
    },
    setup(op: Operation, files: PreparedFiles): Iteration {
      switch (op) {
        case 'sign': {
          const message = read(files.message);
          return () => sign(message);
        }
        case 'verify': {
          const signed = read(files.signed);
          const message = read(files.message);
          return () => verify(signed, message);
        }
        case 'encrypt': {
          const message = read(files.message);
          return () => encrypt(message);
        }
        case 'decrypt': {
          const encrypted = read(files.encrypted);
          return () => decrypt(encrypted);
        }
      }
    },
  };
}
