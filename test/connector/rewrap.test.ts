/**
 * src/connector/rewrap.ts against real PKCS#12 files: our writer's modern
 * and legacy (iOS) profiles and `openssl pkcs12 -export` (default and
 * -legacy 3DES) from the test PKI; every OAEP hash; and each refusal with
 * its stable code. The device side opens each payload with its own P-256
 * identity key (decryptContent + decodeKeyDelivery), as src/device does; a
 * payload changed in transit, or opened by another device, fails.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OID } from '../../src/asn1/oids.ts';
import { connectorKeyFrom } from '../../src/connector/keystore.ts';
import { rewrap, type RewrapResult } from '../../src/connector/rewrap.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { writePkcs12 } from '../../src/pkcs12/write.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { decodeKeyDelivery } from '../../src/protocol/key-delivery.ts';
import { decryptContent, describeEnvelope } from '../../src/smime/cms/enveloped-data.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { type TestPki, createTestPki } from '../support/pki.ts';
import type { EntityName } from '../pki/pki.ts';
import { type DeviceIdentity, claimedRequest, createDeviceCa, importedPfx, rsaKey } from './support.ts';

let pki: TestPki;
let connectorKey: KeyObject;
let device: DeviceIdentity;
let otherDevice: DeviceIdentity;

const cert = (n: EntityName): Certificate => loadCertificates(readFileSync(pki.entity(n).certPath))[0]!;
const key = (n: EntityName) => loadPrivateKey(readFileSync(pki.entity(n).keyPath));

before(async () => {
  pki = await createTestPki();
  connectorKey = rsaKey(3072);
  const ca = await createDeviceCa();
  device = await ca.issueDevice('device-1');
  otherDevice = await ca.issueDevice('device-2');
});

function payloadOf(result: RewrapResult): Uint8Array {
  assert.ok(result.ok, `rewrap refused: ${result.ok ? '' : `${result.error.code}: ${result.error.detail}`}`);
  return result.payload;
}

function refusalOf(result: RewrapResult): string {
  assert.ok(!result.ok, 'rewrap should have refused');
  return result.error.code;
}

/** What the device does: open with its identity key, then check pfxId, thumbprint and that the key is the certificate's. */
function openOnDevice(payload: Uint8Array, identity: DeviceIdentity, expected: { pfxId: string; thumbprint: string }) {
  const opened = decryptContent(payload, [{ certificate: identity.certificate, key: identity.key }]);
  assert.equal(opened.contentCipher, OID.aes256GCM);
  return decodeKeyDelivery(opened.content, expected);
}

const sameKey = (a: KeyObject, b: KeyObject) => assert.deepEqual(createPublicKey(a).export({ format: 'der', type: 'spki' }), createPublicKey(b).export({ format: 'der', type: 'spki' }));

describe('rewrap: PFX sources', () => {
  const sources: { name: string; entity: EntityName; pfx: () => { bytes: Uint8Array; password: string } }[] = [
    { name: 'our writer, modern profile (PBES2/AES-256)', entity: 'bob-2', pfx: () => ({ bytes: writePkcs12([{ key: key('bob-2'), certificate: cert('bob-2'), chain: [cert('intermediate')] }], 'pässwörd 1', { profile: 'modern' }), password: 'pässwörd 1' }) },
    { name: 'our writer, legacy iOS profile (PBE-SHA1-3DES)', entity: 'bob-3', pfx: () => ({ bytes: writePkcs12([{ key: key('bob-3'), certificate: cert('bob-3') }], 'legacy-pw', { profile: 'legacy' }), password: 'legacy-pw' }) },
    { name: 'openssl pkcs12 -export (default)', entity: 'bob-1', pfx: () => ({ bytes: readFileSync(pki.entity('bob-1').p12Path!), password: pki.p12Password }) },
    { name: 'openssl pkcs12 -export -legacy 3DES', entity: 'alice', pfx: () => ({ bytes: readFileSync(pki.entity('alice').legacyP12Path!), password: pki.p12Password }) },
    { name: 'openssl pkcs12 -export, EC P-384 key', entity: 'dave', pfx: () => ({ bytes: readFileSync(pki.entity('dave').p12Path!), password: pki.p12Password }) },
  ];
  for (const source of sources) {
    for (const padding of ['oaepSha256', 'oaepSha384', 'oaepSha512'] as const) {
      test(`${source.name}, ${padding}: the device opens the key and certificate`, async () => {
        const { bytes, password } = source.pfx();
        const pfx = importedPfx(`pfx-${source.entity}`, bytes, password, connectorKey, padding);
        const payload = payloadOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, pfx)));
        const envelope = describeEnvelope(payload);
        assert.equal(envelope.contentType, 'auth-enveloped-data');
        assert.equal(envelope.recipients.length, 1);
        assert.equal(envelope.recipients[0]!.kind, 'kari');
        const delivery = openOnDevice(payload, device, { pfxId: pfx.id, thumbprint: pfx.thumbprint });
        assert.equal(delivery.certificate.thumbprint, cert(source.entity).thumbprint);
        sameKey(delivery.privateKey, key(source.entity));
      });
    }
  }
});

describe('rewrap: refusals', () => {
  const bob2 = () => importedPfx('pfx-bob-2', readFileSync(pki.entity('bob-2').p12Path!), pki.p12Password, connectorKey, 'oaepSha512');

  test('a password encrypted to another connector key: password-undecryptable', async () => {
    const other = rsaKey(2048);
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(other), claimedRequest(device.certificate, bob2()))), 'password-undecryptable');
  });

  test('the stored padding scheme is not the one the password was encrypted with: password-undecryptable', async () => {
    const request = claimedRequest(device.certificate, bob2(), { paddingScheme: 'oaepSha256' });
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), request)), 'password-undecryptable');
  });

  test('a padding scheme that is not OAEP-SHA-2: padding-scheme-unsupported', async () => {
    for (const scheme of ['pkcs1', 'oaepSha1', 'none', '__proto__']) {
      assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, bob2(), { paddingScheme: scheme }))), 'padding-scheme-unsupported', scheme);
    }
  });

  test('the password opens a different PFX than the one sent: pfx-password-wrong', async () => {
    const locked = importedPfx('pfx-x', writePkcs12([{ key: key('bob-2'), certificate: cert('bob-2') }], 'right', { profile: 'legacy' }), 'right', connectorKey);
    const other = importedPfx('pfx-y', writePkcs12([{ key: key('bob-2'), certificate: cert('bob-2') }], 'another', { profile: 'modern' }), 'another', connectorKey);
    for (const [blobFrom, passwordFrom] of [
      [locked, other],
      [other, locked],
    ] as const) {
      const mixed = { ...blobFrom, encryptedPfxPassword: passwordFrom.encryptedPfxPassword };
      assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, mixed))), 'pfx-password-wrong');
    }
  });

  test('no key in the PFX has the request’s thumbprint: thumbprint-not-found', async () => {
    const request = claimedRequest(device.certificate, bob2(), { thumbprint: cert('bob-3').thumbprint });
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), request)), 'thumbprint-not-found');
  });

  test('a thumbprint in lower case still finds its certificate', async () => {
    const pfx = bob2();
    const payload = payloadOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, pfx, { thumbprint: pfx.thumbprint.toLowerCase() })));
    openOnDevice(payload, device, { pfxId: pfx.id, thumbprint: pfx.thumbprint });
  });

  test('bytes that are not PKCS#12: pfx-unreadable', async () => {
    const pfx = { ...bob2(), encryptedPfxBlob: Buffer.from('not a pfx at all') };
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, pfx))), 'pfx-unreadable');
  });

  test('a device certificate that is RSA, not a certificate, or without keyAgreement: device-certificate-unusable', async () => {
    const pfx = bob2();
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(cert('alice'), pfx))), 'device-certificate-unusable');
    const garbage = { ...claimedRequest(device.certificate, pfx), deviceCertificate: Buffer.from('garbage').toString('base64') };
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), garbage)), 'device-certificate-unusable');
    // erin: Ed25519, a signing key that cannot agree on a key.
    assert.equal(refusalOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(cert('erin'), pfx))), 'device-certificate-unusable');
  });

  test('refusal details never contain a password', async () => {
    const secrets = ['Sekr3t-Right-9f2c', 'Sekr3t-Other-77ab'];
    const right = importedPfx('pfx-r', writePkcs12([{ key: key('bob-2'), certificate: cert('bob-2') }], secrets[0]!), secrets[0]!, connectorKey);
    const other = importedPfx('pfx-o', writePkcs12([{ key: key('bob-3'), certificate: cert('bob-3') }], secrets[1]!), secrets[1]!, connectorKey);
    const results = await Promise.all([
      rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, { ...right, encryptedPfxPassword: other.encryptedPfxPassword })),
      rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, right, { thumbprint: cert('bob-3').thumbprint })),
      rewrap(connectorKeyFrom(rsaKey(2048)), claimedRequest(device.certificate, right)),
    ]);
    assert.deepEqual(results.map(refusalOf), ['pfx-password-wrong', 'thumbprint-not-found', 'password-undecryptable']);
    for (const r of results) for (const secret of secrets) assert.ok(!r.ok && !r.error.detail.includes(secret));
  });
});

describe('rewrap: in transit and at the wrong device', () => {
  let payload: Uint8Array;
  let expected: { pfxId: string; thumbprint: string };

  before(async () => {
    const pfx = importedPfx('pfx-bob-2', readFileSync(pki.entity('bob-2').p12Path!), pki.p12Password, connectorKey, 'oaepSha384');
    expected = { pfxId: pfx.id, thumbprint: pfx.thumbprint };
    payload = payloadOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, pfx)));
  });

  test('each single flipped byte of the ciphertext or tag fails the GCM check', () => {
    // The last 16 octets are the tag (mac); the ciphertext sits before it.
    for (const offset of [payload.length - 1, payload.length - 10, payload.length - 40, payload.length - 200]) {
      const tampered = Uint8Array.from(payload);
      tampered[offset]! ^= 0x01;
      assert.throws(() => openOnDevice(tampered, device, expected), (e) => isKeyfleetError(e) && (e.code === 'KF_CMS_DECRYPT_FAILED' || e.code === 'KF_CMS_MALFORMED'), `offset ${offset}`);
    }
  });

  test('another device cannot open it', () => {
    assert.throws(() => openOnDevice(payload, otherDevice, expected), (e) => isKeyfleetError(e, 'KF_CMS_NO_MATCHING_KEY'));
  });

  test('a delivery for another PFX or thumbprint is refused by the device', () => {
    assert.throws(() => openOnDevice(payload, device, { ...expected, pfxId: 'pfx-other' }), (e) => isKeyfleetError(e, 'KF_DELIVERY_INVALID'));
    assert.throws(() => openOnDevice(payload, device, { ...expected, thumbprint: cert('bob-3').thumbprint }), (e) => isKeyfleetError(e, 'KF_DELIVERY_INVALID'));
  });

  test('two re-wraps of the same request differ (fresh key and nonce) and both open', async () => {
    const pfx = importedPfx('pfx-bob-2', readFileSync(pki.entity('bob-2').p12Path!), pki.p12Password, connectorKey, 'oaepSha384');
    const again = payloadOf(await rewrap(connectorKeyFrom(connectorKey), claimedRequest(device.certificate, pfx)));
    assert.notDeepEqual(again, payload);
    openOnDevice(again, device, expected);
  });
});
