/** Apple VPP apps (src/policy/vpp.ts): the answer file, its refusals, the sync plan, and Outlook from VPP in a policy. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isKeyfleetError } from '../../src/errors.ts';
import { validatePolicy } from '../../src/policy/smime-policy.ts';
import { FileVppSource, parseVppAssetsFile, planVppSync, vppAssetToApp } from '../../src/policy/vpp.ts';
import { policyFixtures } from './fixtures.ts';
import { OUTLOOK_VPP, TEAMS_VPP, lookups, refusal, seedPolicy, vppAnswer } from './helpers.ts';

const sourceInvalid = (message: RegExp) => (e: unknown) => {
  assert.ok(isKeyfleetError(e, 'KF_VPP_SOURCE_INVALID'), String(e));
  assert.match(e.message, message);
  return true;
};

test("an Apple Get Assets answer with its lookup results: the iOS apps, books left out", () => {
  const assets = parseVppAssetsFile(JSON.stringify(vppAnswer()));
  assert.deepEqual(assets, [
    { adamId: '951937596', bundleId: 'com.microsoft.Office.Outlook', name: 'Microsoft Outlook', publisher: 'Microsoft Corporation', appStoreUrl: 'https://apps.apple.com/us/app/id951937596', deviceAssignable: true, totalCount: 500, assignedCount: 12 },
    { adamId: '1113153706', bundleId: 'com.microsoft.skype.teams', name: 'Microsoft Teams', publisher: 'Microsoft Corporation', appStoreUrl: 'https://apps.apple.com/us/app/id1113153706', deviceAssignable: true, totalCount: 200, assignedCount: 3 },
  ]);
  // A macOS-only app is no iosVppApp.
  const mac = vppAnswer();
  (mac['assets'] as Record<string, unknown>[])[1]!['supportedPlatforms'] = ['macOS'];
  assert.deepEqual(parseVppAssetsFile(JSON.stringify(mac)).map((a) => a.adamId), ['951937596']);
});

test('a malformed answer is KF_VPP_SOURCE_INVALID, naming what is wrong', () => {
  const mutated = (change: (f: Record<string, unknown>, assets: Record<string, unknown>[]) => void) => {
    const f = vppAnswer();
    change(f, f['assets'] as Record<string, unknown>[]);
    return JSON.stringify(f);
  };
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"assets": [', /not JSON/],
    ['an array', '[]', /must be of type object/],
    ['no results', mutated((f) => delete f['results']), /results is required/],
    ['assets not a list', mutated((f) => (f['assets'] = {})), /assets must be of type array/],
    ['a numeric adamId', mutated((_, a) => (a[0]!['adamId'] = 951937596)), /assets\[0\]\.adamId must be of type string/],
    ['a negative count', mutated((_, a) => (a[0]!['totalCount'] = -1)), /totalCount must be at least 0/],
    ['an unknown product type', mutated((_, a) => (a[0]!['productType'] = 'Movie')), /productType must be one of/],
    ['more assigned than owned', mutated((_, a) => (a[0]!['assignedCount'] = 501)), /more licences assigned than it has/],
    ['an app twice', mutated((_, a) => a.push({ ...a[0]! })), /listed twice/],
    ['an app without metadata', mutated((f) => delete (f['results'] as Record<string, unknown>)['951937596']), /951937596 has no entry in results/],
    ['a bad bundle id', mutated((f) => ((f['results'] as Record<string, Record<string, unknown>>)['951937596']!['bundleId'] = 'com.x;DROP TABLE resources')), /results\.951937596: bundleId is not in the expected format/],
    ['a URL off the App Store', mutated((f) => ((f['results'] as Record<string, Record<string, unknown>>)['951937596']!['url'] = 'https://evil.example/app')), /url is not in the expected format/],
  ];
  for (const [name, text, message] of cases) assert.throws(() => parseVppAssetsFile(text), sourceInvalid(message), name);
});

test('FileVppSource: reads the configured file afresh; a missing or oversized file is refused without naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kf-vpp-'));
  try {
    const path = join(dir, 'vpp.json');
    writeFileSync(path, JSON.stringify(vppAnswer([OUTLOOK_VPP])));
    const source = new FileVppSource(path, 'vpp-contoso');
    assert.equal(source.tokenId, 'vpp-contoso');
    assert.deepEqual((await source.listAssets()).map((a) => a.bundleId), ['com.microsoft.Office.Outlook']);
    writeFileSync(path, JSON.stringify(vppAnswer([OUTLOOK_VPP, TEAMS_VPP])));
    assert.equal((await source.listAssets()).length, 2);

    const small = new FileVppSource(path, 'vpp-contoso', 100);
    await assert.rejects(small.listAssets(), sourceInvalid(/larger than 100 bytes/));
    const gone = new FileVppSource(join(dir, 'missing.json'), 'vpp-contoso');
    await assert.rejects(gone.listAssets(), (e: unknown) => sourceInvalid(/cannot be read/)(e) && !(e as Error).message.includes(dir));
    assert.throws(() => new FileVppSource(path, 'token id with spaces'), refusal('schema-violation'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sync plan: creates what is new, updates changed counts, keeps the admin’s fields, leaves the rest alone', () => {
  const [outlook, teams] = parseVppAssetsFile(JSON.stringify(vppAnswer()));
  const first = planVppSync([], [outlook!, teams!], 'vpp-1');
  assert.equal(first.create.length, 2);
  assert.deepEqual(first.create[0], {
    kind: 'iosVppApp', displayName: 'Microsoft Outlook', publisher: 'Microsoft Corporation', bundleId: 'com.microsoft.Office.Outlook', appStoreUrl: 'https://apps.apple.com/us/app/id951937596',
    vppTokenId: 'vpp-1', appleId: '951937596', totalLicenseCount: 500, usedLicenseCount: 12, licensingType: { supportsUserLicensing: true, supportsDeviceLicensing: true },
  });

  const stored = [
    { id: 'a1', body: { ...first.create[0]!, description: 'added by the admin' } },
    { id: 'a2', body: { ...first.create[1]! } },
    // Another token's Outlook, and a store app: not this sync's.
    { id: 'a3', body: { ...first.create[0]!, vppTokenId: 'vpp-2' } },
    { id: 'a4', body: { kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook' } },
  ];
  assert.deepEqual(planVppSync(stored, [outlook!, teams!], 'vpp-1'), { create: [], update: [], unchanged: ['a1', 'a2'] });

  const plan = planVppSync(stored, [{ ...outlook!, assignedCount: 13 }], 'vpp-1');
  assert.deepEqual(plan.create, []);
  assert.deepEqual(plan.unchanged, []);
  assert.equal(plan.update.length, 1);
  assert.equal(plan.update[0]!.id, 'a1');
  assert.equal(plan.update[0]!.app.usedLicenseCount, 13);
  assert.equal(plan.update[0]!.app.description, 'added by the admin');
  // The other token's Outlook is a different app: it is created for vpp-3.
  assert.equal(planVppSync(stored, [outlook!], 'vpp-3').create.length, 1);
});

test('Outlook from a VPP token is targeted exactly like the App Store one; a VPP app that is not Outlook is refused', async () => {
  const f = await policyFixtures();
  const l = lookups(f.ca.cert.der);
  const policy = seedPolicy({ targetedMobileApps: ['app-outlook-vpp'] });
  assert.deepEqual(await validatePolicy(policy, l), policy);
  await assert.rejects(validatePolicy(seedPolicy({ targetedMobileApps: ['app-teams-vpp'] }), l), refusal('app-not-outlook'));
  // What the sync writes for Outlook is such an app.
  const app = vppAssetToApp({ adamId: OUTLOOK_VPP.adamId, bundleId: OUTLOOK_VPP.bundleId, name: OUTLOOK_VPP.name, deviceAssignable: false, totalCount: 1, assignedCount: 0 }, 'vpp-1');
  assert.equal(app.appStoreUrl, 'https://apps.apple.com/app/id951937596');
  assert.deepEqual(app.licensingType, { supportsUserLicensing: true, supportsDeviceLicensing: false });
});
