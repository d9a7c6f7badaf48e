/**
 * Fixtures for the connector tests: the connector's RSA key, device
 * identity certificates (P-256, keyAgreement, clientAuth, CN = device id)
 * issued by a small CA made with the CA layer's certificate builder, and
 * claimed requests built the way the service builds them from a PFX that
 * was prepared for upload as `keyfleet pfx import` does (src/policy/pfx-import.ts).
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { OID } from '../../src/asn1/oids.ts';
import { buildCertificate, makeSigner, randomSerial, type CertificateSigner } from '../../src/ca/certificate-builder.ts';
import { authorityKeyIdentifier, basicConstraints, extKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../../src/ca/extensions.ts';
import { readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { type PaddingScheme, preparePfxImport } from '../../src/policy/pfx-import.ts';
import type { ClaimedRequest } from '../../src/protocol/connector-api.ts';
import type { UserPfxCertificateRecord } from '../../src/store/resources.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { createSignature } from '../../src/x509/signature.ts';

const DAY = 86_400_000;

export function rsaKey(bits = 3072): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
}

export interface DeviceIdentity {
  readonly deviceId: string;
  readonly certificate: Certificate;
  readonly key: KeyObject;
}

export interface DeviceCa {
  readonly certificate: Certificate;
  issueDevice(deviceId: string): Promise<DeviceIdentity>;
  /** A P-256 S/MIME encryption certificate (emailProtection), to import as a PFX. */
  issueSmime(name: string): Promise<DeviceIdentity>;
}

function signerFor(key: KeyObject): CertificateSigner {
  const publicKey = createPublicKey(key);
  return makeSigner(publicKey, (scheme, data) => Promise.resolve(createSignature(scheme, data, key)));
}

/** A P-256 CA issuing device identity certificates as src/ca's deviceIdentity template does. */
export async function createDeviceCa(): Promise<DeviceCa> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const name = encodeName([['O', 'Keyfleet Test'], ['CN', 'Device CA']]);
  const kid = keyIdentifier(spki);
  const signer = signerFor(key);
  const now = Date.now();
  const der = await buildCertificate(
    { serialNumber: randomSerial(), issuer: name, subject: name, notBefore: new Date(now - DAY), notAfter: new Date(now + 365 * DAY), spki, extensions: [basicConstraints(true), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(kid)] },
    signer,
  );
  return {
    certificate: decodeCertificate(der),
    issueDevice: (deviceId) => issue(deviceId, OID.clientAuth),
    issueSmime: (subject) => issue(subject, OID.emailProtection),
  };

  async function issue(deviceId: string, eku: string): Promise<DeviceIdentity> {
    const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const deviceSpki = createPublicKey(deviceKey).export({ format: 'der', type: 'spki' });
    const cert = await buildCertificate(
      {
        serialNumber: randomSerial(),
        issuer: name,
        subject: encodeName([['CN', deviceId]]),
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 365 * DAY),
        spki: deviceSpki,
        extensions: [basicConstraints(false), keyUsage(['digitalSignature', 'keyAgreement']), extKeyUsage([eku]), subjectKeyIdentifier(keyIdentifier(deviceSpki)), authorityKeyIdentifier(kid)],
      },
      signer,
    );
    return { deviceId, certificate: decodeCertificate(cert), key: deviceKey };
  }
}

/** A PFX as the service stores it after `keyfleet pfx import`: still locked, its password OAEP-encrypted to the connector. */
export function importedPfx(id: string, pfx: Uint8Array, password: string, connectorKey: KeyObject, paddingScheme: PaddingScheme = 'oaepSha512', userPrincipalName = 'bob@example.com'): UserPfxCertificateRecord {
  const upload = preparePfxImport({ pfx, password, connectorPublicKey: connectorKey, paddingScheme, userPrincipalName, intendedPurpose: 'smimeEncryption', keyName: 'connector' }, readPfxMetadata);
  return {
    id,
    userPrincipalName: upload.userPrincipalName,
    thumbprint: upload.thumbprint,
    intendedPurpose: upload.intendedPurpose,
    startDateTime: new Date(upload.startDateTime),
    expirationDateTime: new Date(upload.expirationDateTime),
    providerName: upload.providerName,
    keyName: upload.keyName,
    paddingScheme: upload.paddingScheme,
    encryptedPfxBlob: Buffer.from(upload.encryptedPfxBlob, 'base64'),
    encryptedPfxPassword: Buffer.from(upload.encryptedPfxPassword, 'base64'),
    createdAt: new Date(),
  };
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** The ClaimedRequest the service sends for (device, PFX). */
export function claimedRequest(device: Certificate, pfx: UserPfxCertificateRecord, overrides: { thumbprint?: string; paddingScheme?: string } = {}): ClaimedRequest {
  return {
    requestId: `req-${pfx.id}`,
    claimToken: 'token',
    leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
    deviceId: 'device-1',
    deviceCertificate: b64(device.der),
    pfx: {
      id: pfx.id,
      thumbprint: overrides.thumbprint ?? pfx.thumbprint,
      paddingScheme: overrides.paddingScheme ?? pfx.paddingScheme,
      encryptedPfxBlob: b64(pfx.encryptedPfxBlob),
      encryptedPfxPassword: b64(pfx.encryptedPfxPassword),
    },
  };
}
