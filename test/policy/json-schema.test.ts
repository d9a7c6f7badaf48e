import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import Fastify from 'fastify';
import { type JsonSchema, checkSchema } from '../../src/policy/json-schema.ts';
import { importedPfxProfileSchema, iosStoreAppSchema, iosVppAppSchema, scepProfileSchema, trustedRootProfileSchema } from '../../src/policy/resources.ts';
import { smimePolicySchema } from '../../src/policy/smime-policy.ts';
import { userPfxCertificateUploadSchema } from '../../src/policy/pfx-import.ts';
import { derivedCredentialSettingsSchema } from '../../src/policy/derived-credential.ts';
import { isKeyfleetError } from '../../src/errors.ts';

const schemas: readonly JsonSchema[] = [
  iosStoreAppSchema, iosVppAppSchema, trustedRootProfileSchema, scepProfileSchema, importedPfxProfileSchema, smimePolicySchema, userPfxCertificateUploadSchema, derivedCredentialSettingsSchema,
];

function accepts(schema: JsonSchema, value: unknown): boolean {
  try {
    checkSchema(schema, value, 'x');
    return true;
  } catch (e) {
    if (isKeyfleetError(e, 'KF_USAGE') && e.detail === 'schema-violation') return false;
    throw e;
  }
}

/**
 * Fastify with the Ajv options the API must use for these schemas: no type
 * coercion and no silent removal of unknown fields (Fastify's defaults,
 * coerceTypes and removeAdditional, would accept "true" for true and drop
 * unknown fields instead of refusing them).
 */
async function fastifyValidator(schema: JsonSchema): Promise<(value: unknown) => Promise<boolean>> {
  const app = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } } });
  app.post('/', { schema: { body: schema } }, async () => ({ ok: true }));
  await app.ready();
  return async (value) => {
    const r = await app.inject({ method: 'POST', url: '/', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(value) });
    if (r.statusCode !== 200 && r.statusCode !== 400) throw new Error(`unexpected status ${r.statusCode}: ${r.body}`);
    return r.statusCode === 200;
  };
}

test('every schema compiles in Fastify', async () => {
  for (const s of schemas) await fastifyValidator(s);
});

test('checkSchema names the offending field, never its value', () => {
  const secret = 'hunter2-not-a-boolean';
  assert.throws(
    () => checkSchema(smimePolicySchema, { displayName: 'P', deviceEnrollmentType: 'managedDevices', platform: 'iOS/iPadOS', targetedMobileApps: ['a'], enableSmime: secret }, 'S/MIME policy'),
    (e) => isKeyfleetError(e, 'KF_USAGE') && e.detail === 'schema-violation' && /enableSmime/.test(e.message) && !e.message.includes(secret),
  );
  assert.throws(() => checkSchema(smimePolicySchema, { displayName: 'P' }, 'S/MIME policy'), /deviceEnrollmentType is required/);
  assert.throws(() => checkSchema(iosStoreAppSchema, { kind: 'iosStoreApp', displayName: 'O', bundleId: 'a.b', extra: 1 }, 'app'), /extra is not a known field/);
  assert.throws(() => checkSchema({ type: 'object', properties: { keyUsage: scepProfileSchema.properties.keyUsage } }, { keyUsage: ['digitalSignature', 'digitalSignature'] }, 'p'), /keyUsage must not repeat/);
});

test('checkSchema refuses schema keywords it does not implement', () => {
  assert.throws(() => checkSchema({ type: 'string', format: 'email' } as unknown as JsonSchema, 'a', 'x'), /not supported/);
});

const policyLike = fc.record(
  {
    displayName: fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.constant('')),
    description: fc.string({ maxLength: 1100 }),
    deviceEnrollmentType: fc.constantFrom('managedDevices', 'managedApps', 'other'),
    platform: fc.constantFrom('iOS/iPadOS', 'android', 'ios'),
    targetedMobileApps: fc.array(fc.oneof(fc.constantFrom('app-1', 'bad id', ''), fc.integer()), { maxLength: 2 }),
    enableSmime: fc.oneof(fc.boolean(), fc.constant('true')),
    signingCertificateProfileType: fc.constantFrom('scep', 'pkcsImported', 'derivedCredential', 'SCEP'),
    ldapHostName: fc.string({ maxLength: 310 }),
    bogus: fc.anything(),
  },
  { requiredKeys: [] },
);

test("checkSchema agrees with Fastify's validator on random S/MIME policies", async () => {
  const validate = await fastifyValidator(smimePolicySchema);
  await fc.assert(
    fc.asyncProperty(policyLike, async (value) => {
      const json: unknown = JSON.parse(JSON.stringify(value)); // what travels over HTTP
      assert.equal(accepts(smimePolicySchema, json), await validate(json), JSON.stringify(value));
    }),
    { numRuns: 500 },
  );
});

test("checkSchema agrees with Fastify's validator on random SCEP profiles", async () => {
  const validate = await fastifyValidator(scepProfileSchema);
  const scepLike = fc.record(
    {
      kind: fc.constantFrom('iosScepCertificateProfile', 'other'),
      displayName: fc.string({ maxLength: 5 }),
      subjectNameFormat: fc.constantFrom('commonName', 'custom', 'cn'),
      subjectAlternativeNameType: fc.array(fc.constantFrom('emailAddress', 'userPrincipalName', 'dns'), { maxLength: 3 }),
      keyUsage: fc.array(fc.constantFrom('digitalSignature', 'keyEncipherment'), { maxLength: 3 }),
      keySize: fc.constantFrom(1024, 2048, 4096, 2048.5),
      extendedKeyUsages: fc.array(fc.record({ name: fc.string({ maxLength: 3 }), objectIdentifier: fc.constantFrom('1.3.6.1.5.5.7.3.4', '1.03', 'x') }), { maxLength: 2 }),
      certificateValidityPeriodValue: fc.integer({ min: -1, max: 4000 }),
      certificateValidityPeriodScale: fc.constantFrom('days', 'months', 'years', 'weeks'),
      renewalThresholdPercentage: fc.integer({ min: 0, max: 100 }),
      scepServerUrls: fc.array(fc.constantFrom('https://scep.example.test/scep', 'ftp://x', 'http://a'), { maxLength: 3 }),
      rootCertificateId: fc.constantFrom('root-1', '', 'a b'),
    },
    { requiredKeys: [] },
  );
  await fc.assert(fc.asyncProperty(scepLike, async (value) => assert.equal(accepts(scepProfileSchema, value), await validate(value), JSON.stringify(value))), { numRuns: 500 });
});
