/**
 * `keyfleet connector …`: the PFX connector. `keygen` makes its key pair
 * locally; `register`, `list` and `revoke` manage its credentials over the
 * admin API (KEYFLEET_URL, KEYFLEET_TOKEN); `run` is the connector process
 * itself (src/connector/run.ts), which talks to the service only over
 * /connector/v1, as it would from another host.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorClient } from '../connector/client.ts';
import { loadConnectorKeyFile } from '../connector/keystore.ts';
import { type ConnectorEvent, DEFAULT_CONNECTOR_CONCURRENCY, runConnector } from '../connector/run.ts';
import { CONNECTOR_VERSION } from '../connector/version.ts';
import { KeyfleetError } from '../errors.ts';
import { connectorKeygen } from '../policy/index.ts';
import { apiRequest, helpRequested, parseCommand, printResult, unknownVerb } from './admin.ts';
import { readBoundedFile } from './io.ts';

const USAGE = `Usage:
  keyfleet connector keygen --out-dir DIR [--bits 3072|4096]
  keyfleet connector register --name NAME [--json]
  keyfleet connector list [--json]
  keyfleet connector revoke ID
  keyfleet connector run --url URL --credential-file F --key connector.key [--concurrency N (default 16)]
keygen writes DIR/connector.key (PKCS#8, mode 0600: keep it on the connector) and DIR/connector.pub.pem (give it to
whoever imports PFX files: \`keyfleet pfx import --connector-key connector.pub.pem …\`). Refuses to overwrite.
register prints the connector's credential (kfc_…) once; put it in the file run reads. register, list and revoke
reach the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.
run re-wraps imported PFX files for devices until SIGINT or SIGTERM (then finishes the work in hand); it refuses a
key file that group or others can read. Connector version ${CONNECTOR_VERSION}.`;

const COLUMNS = ['id', 'name', 'version', 'lastSeenDateTime', 'state'] as const;

export async function connectorCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      'out-dir': { type: 'string' },
      bits: { type: 'string' },
      name: { type: 'string' },
      json: { type: 'boolean' },
      url: { type: 'string' },
      'credential-file': { type: 'string' },
      key: { type: 'string' },
      concurrency: { type: 'string' },
      // Hidden: states another version, for the minimum-version test.
      'version-override': { type: 'string' },
    },
    USAGE,
  );
  switch (verb) {
    case 'keygen':
      return keygen(values['out-dir'], values.bits);
    case 'register': {
      if (values.name === undefined) throw new KeyfleetError('KF_USAGE', `--name is required\n${USAGE}`);
      const created = (await apiRequest('POST', 'api/v1/connectors', { name: values.name })) as Record<string, unknown>;
      if (values.json) process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      else process.stdout.write(`${String(created['secret'])}\n`);
      process.stderr.write(`keyfleet: connector "${values.name}" (${String(created['id'])}) registered; its credential above is shown once\n`);
      return 0;
    }
    case 'list': {
      const page = (await apiRequest('GET', 'api/v1/connectors')) as { value: Record<string, unknown>[] };
      printResult(page.value, values.json === true, COLUMNS);
      return 0;
    }
    case 'revoke': {
      const id = positionals[0];
      if (id === undefined) throw new KeyfleetError('KF_USAGE', `a connector id is required\n${USAGE}`);
      await apiRequest('DELETE', `api/v1/connectors/${encodeURIComponent(id)}`);
      return 0;
    }
    case 'run':
      return run(values);
    default:
      throw unknownVerb(verb, USAGE);
  }
}

function keygen(dir: string | undefined, bitsOption: string | undefined): number {
  if (dir === undefined) throw new KeyfleetError('KF_USAGE', `--out-dir is required\n${USAGE}`);
  const bits = bitsOption === undefined ? 4096 : Number(bitsOption);
  if (bits !== 3072 && bits !== 4096) throw new KeyfleetError('KF_USAGE', `--bits must be 3072 or 4096\n${USAGE}`);
  const keyPath = join(dir, 'connector.key');
  const pubPath = join(dir, 'connector.pub.pem');
  for (const p of [keyPath, pubPath]) if (existsSync(p)) throw new KeyfleetError('KF_CONFLICT', `${p} exists; not overwriting a connector key`);
  const pair = connectorKeygen(bits);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // 'wx': created here or not at all, with its mode from the start (no window where it is world-readable).
  writeFileSync(keyPath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(pubPath, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
  process.stderr.write(`keyfleet: wrote ${keyPath} (private, 0600) and ${pubPath}\n`);
  return 0;
}

interface RunValues {
  readonly url?: string | undefined;
  readonly 'credential-file'?: string | undefined;
  readonly key?: string | undefined;
  readonly concurrency?: string | undefined;
  readonly 'version-override'?: string | undefined;
}

function describe(e: ConnectorEvent): string {
  switch (e.type) {
    case 'claimed':
      return `claimed ${e.count} request(s)`;
    case 'delivered':
      return `delivered ${e.requestId}`;
    case 'failed':
      return `could not re-wrap ${e.requestId}: ${e.code} (reported)`;
    case 'dropped':
      return `result for ${e.requestId} not posted: ${e.reason}`;
    case 'backoff':
      return `service unavailable (${e.reason}); next try in ${(e.ms / 1000).toFixed(1)} s`;
    case 'stopping':
      return `stopping after ${e.inFlight} request(s) in hand`;
  }
}

async function run(values: RunValues): Promise<number> {
  const url = values.url;
  const credentialFile = values['credential-file'];
  const keyPath = values.key;
  if (url === undefined || credentialFile === undefined || keyPath === undefined) throw new KeyfleetError('KF_USAGE', `--url, --credential-file and --key are required\n${USAGE}`);
  const concurrency = values.concurrency === undefined ? DEFAULT_CONNECTOR_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new KeyfleetError('KF_USAGE', `--concurrency must be 1–64\n${USAGE}`);
  const key = loadConnectorKeyFile(keyPath);
  const credential = readBoundedFile(credentialFile, 4096, 'credential file').toString('utf8').trim();
  const version = values['version-override'] ?? CONNECTOR_VERSION;
  const client = new ConnectorClient({ url, credential, version });

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(`keyfleet connector: ${signal} again; leaving now (leased requests return to the queue when their leases end)\n`);
      process.exit(130);
    }
    process.stderr.write(`keyfleet connector: ${signal}; finishing the work in hand\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stderr.write(`keyfleet connector: version ${version}, working for ${new URL(url).origin}\n`);
  try {
    const summary = await runConnector({
      client,
      key,
      concurrency,
      signal: stop.signal,
      log: (e) => process.stderr.write(`keyfleet connector: ${describe(e)}\n`),
    });
    process.stderr.write(`keyfleet connector: stopped (${summary.delivered} delivered, ${summary.failed} failed, ${summary.dropped} not posted)\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
