/**
 * PKCS#12 (RFC 7292) read and write, modern and legacy. See read.ts,
 * write.ts and inspect.ts; docs/specs.md lists the RFC sections covered.
 */
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';

export { readPkcs12, type Pkcs12Contents, type Pkcs12Key, type Pkcs12ReadOptions } from './read.ts';
export { writePkcs12, type Pkcs12WriteEntry, type Pkcs12WriteOptions, DEFAULT_WRITE_ITERATIONS } from './write.ts';
export { inspectPkcs12, type Pkcs12Inspection, type Pkcs12BagSummary } from './inspect.ts';
export { DEFAULT_MAX_ITERATIONS, DEFAULT_MAX_TOTAL_ITERATIONS } from './kdf.ts';

/** One identity as PKCS#12 tools think of it: a key, its certificate, or both, with the bag attributes. */
export interface Pkcs12Entry {
  readonly key?: KeyObject;
  readonly certificate?: Certificate;
  readonly friendlyName?: string;
  readonly localKeyId?: Uint8Array;
}
