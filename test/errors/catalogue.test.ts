import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { errorCatalogue } from '../../src/errors.ts';

test('every error code has a docs/errors.md row with its status, and every row a code', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `(KF_[A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  for (const [code, { status }] of Object.entries(errorCatalogue)) {
    assert.equal(rows.get(code), status, `docs/errors.md row for ${code}`);
  }
  for (const code of rows.keys()) assert.ok(code in errorCatalogue, `${code} is documented but not in src/errors.ts`);
});
