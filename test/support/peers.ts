/**
 * Thin wrappers around the real S/MIME peers the interop tests talk to:
 * OpenSSL (`openssl cms`), GnuPG (`gpgsm`) and NSS (`cmsutil`). Each run has
 * a timeout and keeps its exit code, stdout and stderr (see exec.ts).
 *
 * Producing calls (sign, encrypt) throw with the whole run on failure;
 * checking calls (verify, decrypt) return the run so tests can assert both
 * success and the peer's refusal.
 *
 * What these peer versions (Debian 12: OpenSSL 3.0 CLI, gpgsm 2.2.40,
 * NSS 3.87) can and cannot do was found by trying; see peers-smoke.test.ts,
 * which proves this harness against the peers themselves.
 */
export type { RunResult } from './exec.ts';
export { type Cipher, type Digest, type PeerName, missingPeers, requirePeers, scratchDir } from './peers/common.ts';
export { type OpensslEncryptOptions, type OpensslSignOptions, type OutputHeaders, openssl, opensslSmime } from './peers/openssl.ts';
export { Gpgsm, type GpgsmResult } from './peers/gpgsm.ts';
export { NssDb, type NssSignerStatus } from './peers/nss.ts';
