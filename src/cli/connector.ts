/** `keyfleet connector keygen`: the PFX connector's RSA key pair, made locally (no server). */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import { connectorKeygen } from '../policy/index.ts';
import { helpRequested, parseCommand, unknownVerb } from './admin.ts';

const USAGE = `Usage:
  keyfleet connector keygen --out-dir DIR [--bits 3072|4096]
Writes DIR/connector.key (PKCS#8, mode 0600: keep it on the connector) and DIR/connector.pub.pem (give it to
whoever imports PFX files: \`keyfleet pfx import --connector-key connector.pub.pem …\`). Refuses to overwrite.`;

export async function connectorCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  if (verb !== 'keygen') throw unknownVerb(verb, USAGE);
  const { values } = parseCommand(rest, { 'out-dir': { type: 'string' }, bits: { type: 'string' } }, USAGE);
  const dir = values['out-dir'];
  if (dir === undefined) throw new KeyfleetError('KF_USAGE', `--out-dir is required\n${USAGE}`);
  const bits = values.bits === undefined ? 4096 : Number(values.bits);
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
