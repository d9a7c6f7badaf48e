/** ResourcesStore (src/store/resources.ts) on a backend: the same behaviour on SQLite and PostgreSQL. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResourceRecord, UserPfxCertificateRecord } from '../../src/store/resources.ts';
import type { Store } from '../../src/store/store.ts';
import { rejectsWith, type StoreBackend } from '../store/suite.ts';

const T0 = new Date('2025-01-01T00:00:00.000Z');

function resource(id: string, overrides: Partial<ResourceRecord> = {}): ResourceRecord {
  return { collection: 'certificateProfile', id, kind: 'iosImportedPfxCertificateProfile', displayName: `P ${id}`, body: { kind: 'iosImportedPfxCertificateProfile', displayName: `P ${id}`, intendedPurpose: 'smimeEncryption' }, createdAt: T0, updatedAt: T0, ...overrides };
}

function pfx(id: string, upn: string, thumbprint: string): UserPfxCertificateRecord {
  return {
    id, userPrincipalName: upn, thumbprint, intendedPurpose: 'smimeEncryption', startDateTime: T0, expirationDateTime: new Date('2026-01-01T00:00:00Z'),
    providerName: 'Keyfleet PFX Connector', keyName: 'k1', paddingScheme: 'oaepSha512', encryptedPfxBlob: new Uint8Array([0x30, 0x82, 1, 2]), encryptedPfxPassword: new Uint8Array(256).fill(7), createdAt: T0,
  };
}

/** KF_CONFLICT with a message that names the record. */
async function clash(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await rejectsWith(promise, 'KF_CONFLICT');
  await promise.catch((e: unknown) => assert.match((e as Error).message, message));
}

export function resourcesStoreConformance(backend: StoreBackend): void {
  describe(`ResourcesStore on ${backend.name}`, { skip: backend.skip ?? false }, () => {
    let store: Store;
    before(async () => {
      await backend.setUp();
      store = await backend.open();
      await store.ensureTenant('r1', 'R1');
      await store.ensureTenant('r2', 'R2');
    });
    after(async () => {
      await store?.close();
      await backend.tearDown();
    });

    test('resources: put, get, pages in id order, kind filter, duplicate ids, tenant isolation', async () => {
      const t = store.forTenant('r1');
      for (const id of ['c', 'a', 'b']) await t.resources.putResource(resource(id));
      await t.resources.putResource(resource('z', { kind: 'iosTrustedRootCertificate' }));
      await t.resources.putResource(resource('a', { collection: 'policy', kind: 'iosMobileAppConfiguration' }));
      assert.deepEqual(await t.resources.getResource('certificateProfile', 'a'), resource('a'));
      await rejectsWith(t.resources.putResource(resource('a')), 'KF_CONFLICT');
      const first = await t.resources.listResources('certificateProfile', { limit: 2 });
      assert.deepEqual(first.items.map((r) => r.id), ['a', 'b']);
      const second = await t.resources.listResources('certificateProfile', { limit: 2, cursor: first.nextCursor! });
      assert.deepEqual(second.items.map((r) => r.id), ['c', 'z']);
      assert.equal(second.nextCursor, undefined);
      assert.deepEqual((await t.resources.listResources('certificateProfile', { kind: 'iosTrustedRootCertificate' })).items.map((r) => r.id), ['z']);
      assert.equal(await store.forTenant('r2').resources.getResource('certificateProfile', 'a'), undefined);
      assert.equal(await store.forTenant('r2').resources.deleteResource('certificateProfile', 'a'), false);
    });

    test('update: compare-and-set on updatedAt and kind; createdAt kept; missing is KF_NOT_FOUND; tenant isolation', async () => {
      const t = store.forTenant('r1');
      const T1 = new Date('2025-02-01T00:00:00.000Z');
      const original = resource('u1');
      await t.resources.putResource(original);
      const changed = { ...original, displayName: 'Renamed', body: { ...original.body, displayName: 'Renamed', intendedPurpose: 'smimeSigning' }, updatedAt: T1 };
      await t.resources.updateResource(changed, T0);
      assert.deepEqual(await t.resources.getResource('certificateProfile', 'u1'), changed);
      // A second writer that read the old version loses, and changes nothing.
      await rejectsWith(t.resources.updateResource({ ...original, displayName: 'Stale', updatedAt: new Date(T1.getTime() + 5) }, T0), 'KF_CONFLICT');
      await rejectsWith(t.resources.updateResource({ ...changed, kind: 'iosTrustedRootCertificate', updatedAt: new Date(T1.getTime() + 5) }, T1), 'KF_CONFLICT');
      await rejectsWith(t.resources.updateResource({ ...changed, id: 'nope' }, T1), 'KF_NOT_FOUND');
      await rejectsWith(store.forTenant('r2').resources.updateResource({ ...changed, displayName: 'Other tenant' }, T1), 'KF_NOT_FOUND');
      assert.deepEqual(await t.resources.getResource('certificateProfile', 'u1'), changed);
      assert.equal(await t.resources.deleteResource('certificateProfile', 'u1'), true);
    });

    test('derived-credential settings are a collection of their own', async () => {
      const t = store.forTenant('r1');
      const setting = resource('d1', { collection: 'derivedCredential', kind: 'deviceManagementDerivedCredentialSettings', body: { displayName: 'Purebred', issuer: 'purebred' } });
      await t.resources.putResource(setting);
      assert.deepEqual(await t.resources.getResource('derivedCredential', 'd1'), setting);
      assert.equal(await t.resources.getResource('certificateProfile', 'd1'), undefined);
      assert.deepEqual((await t.resources.listResources('derivedCredential')).items.map((r) => r.id), ['d1']);
      assert.equal(await t.resources.deleteResource('derivedCredential', 'd1'), true);
    });

    test('assignments: replaced as a whole, exclusion wins, removed with their resource', async () => {
      const t = store.forTenant('r1');
      await t.resources.replaceAssignments('certificateProfile', 'b', ['g1', 'g2'], ['g3']);
      await t.resources.replaceAssignments('certificateProfile', 'b', ['g2', 'g4', 'g3'], ['g3']);
      assert.deepEqual(await t.resources.listAssignments('certificateProfile', 'b'), [
        { collection: 'certificateProfile', resourceId: 'b', groupId: 'g2', intent: 'include' },
        { collection: 'certificateProfile', resourceId: 'b', groupId: 'g3', intent: 'exclude' },
        { collection: 'certificateProfile', resourceId: 'b', groupId: 'g4', intent: 'include' },
      ]);
      await rejectsWith(t.resources.replaceAssignments('certificateProfile', 'missing', ['g1'], []), 'KF_NOT_FOUND');
      await rejectsWith(store.forTenant('r2').resources.replaceAssignments('certificateProfile', 'b', ['g1'], []), 'KF_NOT_FOUND');
      assert.deepEqual(await store.forTenant('r2').resources.listAssignments(), []);
      assert.equal(await t.resources.deleteResource('certificateProfile', 'b'), true);
      assert.deepEqual(await t.resources.listAssignments('certificateProfile', 'b'), []);
    });

    test('imported PFX certificates: bytes kept exactly, listed by UPN case-insensitively, one per user and thumbprint', async () => {
      const t = store.forTenant('r1');
      const thumb = 'AB'.repeat(20);
      await t.resources.putUserPfxCertificate(pfx('p1', 'Alice@Contoso.com', thumb));
      await t.resources.putUserPfxCertificate(pfx('p2', 'bob@contoso.com', thumb));
      await rejectsWith(t.resources.putUserPfxCertificate(pfx('p3', 'alice@contoso.com', thumb)), 'KF_CONFLICT');
      assert.deepEqual(await t.resources.getUserPfxCertificate('p1'), pfx('p1', 'Alice@Contoso.com', thumb));
      assert.deepEqual((await t.resources.listUserPfxCertificates({ userPrincipalName: 'ALICE@contoso.com' })).items.map((c) => c.id), ['p1']);
      assert.equal(await store.forTenant('r2').resources.getUserPfxCertificate('p1'), undefined);
      assert.equal(await t.resources.deleteUserPfxCertificate('p1'), true);
      assert.equal(await t.resources.deleteUserPfxCertificate('p1'), false);
    });

    test('a batch of PFX certificates: all stored, or none with the first clashing record named by index', async () => {
      await store.ensureTenant('r3', 'R3');
      const t = store.forTenant('r3');
      const thumb = (i: number) => i.toString(16).toUpperCase().padStart(40, '0');
      await t.resources.putUserPfxCertificates([]);
      await t.resources.putUserPfxCertificate(pfx('b-0000', 'Erin@Contoso.com', thumb(999)));
      // 250 records: the existence check and the insert run in chunks, and a clash in the last one still counts.
      const batch = Array.from({ length: 250 }, (_, i) => pfx(`b-${String(i + 1).padStart(4, '0')}`, `user${i % 7}@contoso.com`, thumb(i)));
      await clash(t.resources.putUserPfxCertificates([...batch.slice(0, 230), pfx('b-x', 'ERIN@contoso.com', thumb(999)), ...batch.slice(230)]), /^record 230: certificate 0{37}3E7 is already imported for ERIN@contoso\.com$/);
      await clash(t.resources.putUserPfxCertificates([batch[0]!, batch[1]!, pfx('b-y', 'USER1@contoso.com', thumb(1))]), /^record 2: certificate .* repeats record 1$/);
      assert.deepEqual((await t.resources.listUserPfxCertificateRefs()).map((r) => r.id), ['b-0000'], 'nothing of a refused batch was stored');

      await t.resources.putUserPfxCertificates(batch);
      assert.deepEqual(await t.resources.getUserPfxCertificate('b-0137'), batch[136]);
      // The same thumbprint for another user, and in another tenant, is no clash.
      await t.resources.putUserPfxCertificates([pfx('b-z', 'frank@contoso.com', thumb(0))]);
      await store.forTenant('r2').resources.putUserPfxCertificates([pfx('b-0001', 'user0@contoso.com', thumb(0))]);
      await clash(t.resources.putUserPfxCertificates([pfx('b-w', 'user3@contoso.com', thumb(3))]), /^record 0: /);
      assert.equal((await t.resources.listUserPfxCertificates({ limit: 1000 })).items.length, 252);
    });

    test('PFX refs: every certificate of the tenant in id order, without the encrypted PFX or password', async () => {
      await store.ensureTenant('r4', 'R4');
      const t = store.forTenant('r4');
      assert.deepEqual(await t.resources.listUserPfxCertificateRefs(), []);
      await t.resources.putUserPfxCertificate({ ...pfx('q2', 'Bob@Contoso.com', 'CD'.repeat(20)), intendedPurpose: 'smimeSigning' });
      await t.resources.putUserPfxCertificates([pfx('q1', 'alice@contoso.com', 'AB'.repeat(20)), pfx('q3', 'alice@contoso.com', 'EF'.repeat(20))]);
      await store.forTenant('r2').resources.putUserPfxCertificate(pfx('q0', 'alice@contoso.com', '12'.repeat(20)));
      const refs = await t.resources.listUserPfxCertificateRefs();
      assert.deepEqual(refs, [
        { id: 'q1', userPrincipalName: 'alice@contoso.com', thumbprint: 'AB'.repeat(20), intendedPurpose: 'smimeEncryption' },
        { id: 'q2', userPrincipalName: 'Bob@Contoso.com', thumbprint: 'CD'.repeat(20), intendedPurpose: 'smimeSigning' },
        { id: 'q3', userPrincipalName: 'alice@contoso.com', thumbprint: 'EF'.repeat(20), intendedPurpose: 'smimeEncryption' },
      ]);
      await t.resources.deleteUserPfxCertificate('q2');
      assert.deepEqual((await t.resources.listUserPfxCertificateRefs()).map((r) => r.id), ['q1', 'q3']);
    });

    test('directory snapshot: the tenant’s groups and memberships only', async () => {
      const t = store.forTenant('r2');
      const now = T0;
      await t.directory.putUser({ id: 'u1', userPrincipalName: 'u1@x.com', mail: undefined, displayName: 'U1', isExchangeOnline: true, accountEnabled: true, externalId: undefined, createdAt: now, updatedAt: now });
      for (const id of ['g1', 'g2']) await t.directory.putGroup({ id, displayName: id, description: undefined, externalId: undefined, createdAt: now, updatedAt: now });
      await t.directory.addMember('g1', { type: 'group', id: 'g2' });
      await t.directory.addMember('g2', { type: 'user', id: 'u1' });
      const s = await t.resources.directorySnapshot();
      assert.deepEqual([...s.groupIds].sort(), ['g1', 'g2']);
      assert.deepEqual(
        [...s.memberships].sort((a, b) => a.groupId.localeCompare(b.groupId)),
        [
          { groupId: 'g1', memberId: 'g2', memberType: 'group' },
          { groupId: 'g2', memberId: 'u1', memberType: 'user' },
        ],
      );
      assert.deepEqual((await store.forTenant('r1').resources.directorySnapshot()).memberships, []);
    });
  });
}
