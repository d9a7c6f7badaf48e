/** Shared by the SignedData tests: the declared test PKI as Certificates and keys. */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { type EntityName, type TestEntity, type TestPki, createTestPki } from '../support/pki.ts';
import type { SignerSpec } from '../../src/smime/cms/signed-data.ts';

export interface Signer {
  readonly entity: TestEntity;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** Issuing CAs below the root. */
  readonly chain: readonly Certificate[];
}

export interface Fixture {
  readonly pki: TestPki;
  readonly root: Certificate;
  readonly intermediate: Certificate;
  signer(name: EntityName): Signer;
  /** A SignerSpec for `name` with its chain, plus any overrides. */
  spec(name: EntityName, overrides?: Partial<SignerSpec>): SignerSpec;
}

let fixture: Promise<Fixture> | undefined;

export function getFixture(): Promise<Fixture> {
  fixture ??= createTestPki().then((pki) => {
    const signers = new Map<EntityName, Signer>();
    const signer = (name: EntityName): Signer => {
      let s = signers.get(name);
      if (!s) {
        const entity = pki.entity(name);
        s = {
          entity,
          certificate: loadCertificates(entity.certDer)[0]!,
          key: loadPrivateKey(Buffer.from(entity.keyPem, 'latin1')),
          chain: entity.chainPath ? loadCertificates(readFileSync(entity.chainPath)) : [],
        };
        signers.set(name, s);
      }
      return s;
    };
    return {
      pki,
      root: loadCertificates(pki.root.certDer)[0]!,
      intermediate: loadCertificates(pki.intermediate.certDer)[0]!,
      signer,
      spec: (name, overrides = {}) => {
        const s = signer(name);
        return { certificate: s.certificate, key: s.key, chain: s.chain, ...overrides };
      },
    };
  });
  return fixture;
}
