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
