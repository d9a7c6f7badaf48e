/**
 * The server bench:service measures the API against: what `keyfleet serve`
 * runs for the admin API (src/http/server.ts buildServer over the store,
 * no request logging), in its own process so the load generator does not
 * share its event loop. Without a CA: the admin API needs none, and the
 * PKI routes are bench:pki's.
 *
 *   node bench/service/server-child.ts (--data DIR | --url postgres://…)
 *
 * Prints `listening http://127.0.0.1:PORT` once it accepts connections;
 * closes on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { buildServer } from '../../src/http/server.ts';
import { openStore } from '../../src/store/open.ts';

const { values } = parseArgs({ options: { data: { type: 'string' }, url: { type: 'string' } }, strict: true });
const store = await openStore({ ...(values.url === undefined ? { dataDir: values.data ?? './data' } : { url: values.url }), env: {} });
const app = await buildServer({ admin: { store } });
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening ${address}\n`);
await new Promise<void>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});
await app.close();
await store.close();
