/** Shared plumbing for CLI commands: options, bounded input, output. */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KeyfleetError } from '../errors.ts';

/** Exchange Online accepts 150 MB messages; leave room for transfer encoding. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/** Certificates, keys, CRLs and PKCS#12 files are small; a CRL of 100,000 entries is ~4 MB. */
export const MAX_SMALL_FILE_BYTES = 32 * 1024 * 1024;

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with usage errors turned into KF_USAGE. */
export function parseOptions<T extends Options>(argv: string[], options: T, usage: string) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    throw new KeyfleetError('KF_USAGE', `${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n${usage}`);
  }
}

export function readBoundedFile(path: string, limit = MAX_SMALL_FILE_BYTES, what = 'file'): Buffer {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new KeyfleetError('KF_USAGE', `cannot read ${what} "${path}"`);
  }
  if (size > limit) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `${what} "${path}" is larger than ${limit} bytes`);
  return readFileSync(path);
}

/** The input message from --in or stdin, refusing more than `limit` bytes. */
export async function readInput(path: string | undefined, limit = MAX_MESSAGE_BYTES): Promise<Buffer> {
  if (path !== undefined) return readBoundedFile(path, limit, 'input');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `input is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export async function writeOutput(path: string | undefined, data: Uint8Array | string): Promise<void> {
  if (path !== undefined) {
    writeFileSync(path, data);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Values of a repeatable option in command-line order. */
export function many(value: string | boolean | (string | boolean)[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

type Subcommand = (argv: string[]) => Promise<number>;

/**
 * Runs `<noun> <verb> …`: the verb's handler, help for `help`/`--help`,
 * and a usage error naming the verb otherwise.
 */
export async function dispatch(noun: string, argv: string[], verbs: Readonly<Record<string, Subcommand>>, usage: string): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'help' || verb === '--help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const handler = verb !== undefined && Object.hasOwn(verbs, verb) ? verbs[verb] : undefined;
  if (!handler) throw new KeyfleetError('KF_USAGE', `${verb === undefined ? `keyfleet ${noun} needs a command` : `unknown ${noun} command "${verb}"`}\n${usage}`);
  return handler(rest);
}

/** The value of a required option, or a usage error naming it. */
export function requireOption(value: string | undefined, option: string, usage: string): string {
  if (value === undefined) throw new KeyfleetError('KF_USAGE', `${option} is required\n${usage}`);
  return value;
}
