/**
 * What the bench measures, as one small interface that Keyfleet's engine and
 * PKI.js both implement, so each (implementation, operation, size) runs the
 * same loop in its own child process.
 */
import { join } from 'node:path';

export const OPERATIONS = ['sign', 'verify', 'encrypt', 'decrypt'] as const;
export type Operation = (typeof OPERATIONS)[number];

export type ImplName = 'keyfleet' | 'pkijs';

/** One iteration of an operation; returns the bytes it produced. */
export type Iteration = () => Uint8Array | Promise<Uint8Array>;

/** The files a size's group works on, written once by the `prepare` child. */
export interface PreparedFiles {
  /** The plain RFC 5322 message. */
  readonly message: string;
  /** That message signed (what `verify` reads). */
  readonly signed: string;
  /** That message encrypted (what `decrypt` reads). */
  readonly encrypted: string;
}

export function preparedFiles(dir: string, impl: ImplName, bytes: number): PreparedFiles {
  return {
    message: join(dir, `message-${bytes}.eml`),
    signed: join(dir, `${impl}-signed-${bytes}.bin`),
    encrypted: join(dir, `${impl}-encrypted-${bytes}.bin`),
  };
}

export interface CmsImpl {
  /** Writes `files.signed` and `files.encrypted` from `files.message`. */
  prepare(files: PreparedFiles): Promise<void>;
  /** Reads what `op` needs from the prepared files and returns one iteration of it. */
  setup(op: Operation, files: PreparedFiles): Iteration;
}
