/** Child process for sqlite-processes.test.ts: consumes one challenge from a store and prints the outcome. */
import { openStore } from '../../src/store/open.ts';

const [dataDir, tenantId, hash] = process.argv.slice(2);
if (dataDir === undefined || tenantId === undefined || hash === undefined) throw new Error('usage: dataDir tenant hash');
const store = await openStore({ dataDir, env: {} });
try {
  const tenant = store.forTenant(tenantId);
  // Hold a write transaction for a moment so the processes' transactions overlap.
  const result = await tenant.transaction(async (tx) => {
    const r = await tx.scep.consumeChallenge(hash, new Date('2030-01-02T03:04:06Z'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    return r;
  });
  process.stdout.write(result.outcome);
} finally {
  await store.close();
}
