/**
 * The device keystore: our stand-in for the iOS keychain access group that
 * the Company Portal agent and Outlook share (docs/delivery.md). One file
 * per device holds the device identity, the SCEP signing certificates with
 * their keys, the whole encryption history with keys, the trusted roots,
 * the managed app configuration per bundle id, and the contacts the mail
 * side found.
 *
 * - Encrypted: AES-256-GCM under a key from a 32-byte key file (mode 0600,
 *   by default `<keystore>.key`) or from a passphrase through scrypt; the
 *   file records which (keystore-format.ts).
 * - Crash-safe and shared: readers take no lock and always see one whole
 *   version; writers serialise on `<keystore>.lock` and replace the file
 *   atomically (atomic-file.ts). A write is a read-modify-write under the
 *   lock (update()), so two writers never lose each other's changes.
 * - Refused whole: a wrong key, a damaged or altered file, or one past the
 *   size limit is a KeyfleetError (KEYSTORE_ERROR, KF_INPUT_TOO_LARGE),
 *   never a crash and never part of a store.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import { type FileLockOptions, FileLock, type WriteStage, readFileLimited, writeFileAtomic } from './atomic-file.ts';
import { type KdfRecord, type KeystoreKeySource, createKeyFile, deriveFileKey, newKdfRecord, open, readHeader, sameKdf, seal } from './keystore-format.ts';
import { EMPTY_CONTENTS, type ContactSource, type KeystoreContents, KeystoreDraft, type KeystoreItemKind, decodeContents, encodeContents } from './keystore-data.ts';
import { type ExportOptions, type KeystoreListing, exportItem, listContents } from './keystore-export.ts';
import type { Certificate } from '../x509/certificate.ts';

export type { KeystoreKeySource, ScryptParams } from './keystore-format.ts';
export { DEFAULT_SCRYPT, createKeyFile } from './keystore-format.ts';
export type {
  AppConfiguration,
  AppSetting,
  Contact,
  ContactSource,
  DeviceIdentity,
  EncryptionCredential,
  KeystoreContents,
  KeystoreItemKind,
  SigningCredential,
  TrustedRoot,
} from './keystore-data.ts';
export { KeystoreDraft } from './keystore-data.ts';
export type { ExportOptions, KeystoreItemSummary, KeystoreListing } from './keystore-export.ts';
export type { WriteStage } from './atomic-file.ts';

/** Past this size a keystore is refused unread (a few thousand certificates fit easily). */
export const MAX_KEYSTORE_BYTES = 16 * 1024 * 1024;

export interface KeystoreOptions {
  readonly lock?: FileLockOptions;
  readonly maxBytes?: number;
  readonly clock?: () => Date;
  /** Called at each stage of a write; tests stop the process there to prove crash safety. */
  readonly onWriteStage?: (stage: WriteStage) => void;
}

/** One whole version of the keystore, as read. */
export interface KeystoreSnapshot extends KeystoreContents {
  readonly generation: number;
  readonly writtenAt: Date;
  readonly kdf: 'key-file' | 'scrypt';
}

export interface UpdateResult<T> {
  readonly result: T;
  readonly snapshot: KeystoreSnapshot;
  /** False when the change changed nothing and the file was left alone. */
  readonly written: boolean;
}

/** `<keystore>.key`: where the key file lives unless told otherwise. */
export function defaultKeyFilePath(keystorePath: string): string {
  return `${keystorePath}.key`;
}

export class DeviceKeystore {
  readonly path: string;
  readonly #options: KeystoreOptions;
  #source: KeystoreKeySource;
  #key: { readonly kdf: KdfRecord; readonly fileKey: Buffer } | undefined;
  #cache: { readonly bytes: Buffer; readonly snapshot: KeystoreSnapshot } | undefined;

  private constructor(path: string, source: KeystoreKeySource, options: KeystoreOptions) {
    this.path = path;
    this.#source = source;
    this.#options = options;
  }

  /**
   * Makes a new, empty keystore (and its directory, 0700, when missing).
   * With a key-file source whose file does not exist yet, the key file is
   * created first (32 random bytes, 0600).
   * Refuses (KF_CONFLICT) when the keystore exists.
   */
  static async create(path: string, source: KeystoreKeySource, options: KeystoreOptions = {}): Promise<DeviceKeystore> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (source.kind === 'key-file' && !existsSync(source.path)) createKeyFile(source.path);
    const ks = new DeviceKeystore(path, source, options);
    const lock = await FileLock.acquire(ks.#lockPath, options.lock);
    try {
      if (existsSync(path)) throw new KeyfleetError('KF_CONFLICT', `a keystore already exists at ${path}`);
      const kdf = newKdfRecord(source);
      const fileKey = await deriveFileKey(source, kdf);
      ks.#key = { kdf, fileKey };
      ks.#write(EMPTY_CONTENTS, kdf, fileKey, 1, lock);
    } finally {
      lock.release();
    }
    return ks;
  }

  /** Opens an existing keystore, checking the key and reading it once (KF_NOT_FOUND when there is none). */
  static async open(path: string, source: KeystoreKeySource, options: KeystoreOptions = {}): Promise<DeviceKeystore> {
    const ks = new DeviceKeystore(path, source, options);
    await ks.snapshot();
    return ks;
  }

  get #lockPath(): string {
    return `${this.path}.lock`;
  }

  #now(): Date {
    return this.#options.clock?.() ?? new Date();
  }

  /** The current version, read from disk now (without a lock: the rename makes every read whole). */
  async snapshot(): Promise<KeystoreSnapshot> {
    let bytes: Buffer;
    try {
      bytes = readFileLimited(this.path, this.#options.maxBytes ?? MAX_KEYSTORE_BYTES);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyfleetError('KF_NOT_FOUND', `no keystore at ${this.path}`);
      throw e;
    }
    if (this.#cache?.bytes.equals(bytes)) return this.#cache.snapshot;
    const { kdf } = readHeader(bytes).header;
    const fileKey = await this.#fileKeyFor(kdf);
    const { header, plaintext } = open(bytes, fileKey);
    let contents: KeystoreContents;
    try {
      contents = decodeContents(plaintext);
    } finally {
      plaintext.fill(0);
    }
    const snapshot = freeze(contents, header.generation, new Date(header.writtenAt), header.kdf.name);
    this.#cache = { bytes, snapshot };
    return snapshot;
  }

  async #fileKeyFor(kdf: KdfRecord): Promise<Buffer> {
    if (this.#key && sameKdf(this.#key.kdf, kdf)) return this.#key.fileKey;
    // Another process may have changed the key (changeKey): derive again from our source.
    const fileKey = await deriveFileKey(this.#source, kdf);
    this.#key = { kdf, fileKey };
    return fileKey;
  }

  /**
   * Changes the keystore under its lock: `change` gets a draft of the
   * current version and edits it; when it changed anything, the next
   * version is written atomically. `change` runs synchronously inside the
   * lock; whatever it throws leaves the file as it was.
   */
  async update<T>(change: (draft: KeystoreDraft) => T): Promise<UpdateResult<T>> {
    const lock = await FileLock.acquire(this.#lockPath, this.#options.lock);
    try {
      this.#options.onWriteStage?.('locked');
      const current = await this.snapshot();
      const draft = new KeystoreDraft(current, this.#now());
      const result = change(draft);
      if (!draft.changed) return { result, snapshot: current, written: false };
      const snapshot = this.#write(draft.contents(), this.#key!.kdf, this.#key!.fileKey, current.generation + 1, lock);
      return { result, snapshot, written: true };
    } finally {
      lock.release();
    }
  }

  /** Re-encrypts the keystore under a new key file or passphrase (a fresh salt for a passphrase). */
  async changeKey(source: KeystoreKeySource): Promise<void> {
    if (source.kind === 'key-file' && !existsSync(source.path)) createKeyFile(source.path);
    const kdf = newKdfRecord(source);
    const fileKey = await deriveFileKey(source, kdf);
    const lock = await FileLock.acquire(this.#lockPath, this.#options.lock);
    try {
      const current = await this.snapshot();
      this.#write(current, kdf, fileKey, current.generation + 1, lock);
      this.#source = source;
      this.#key = { kdf, fileKey };
    } finally {
      lock.release();
    }
  }

  #write(contents: KeystoreContents, kdf: KdfRecord, fileKey: Buffer, generation: number, lock: FileLock): KeystoreSnapshot {
    const writtenAt = this.#now();
    const plaintext = encodeContents(contents);
    let sealed: Buffer;
    try {
      sealed = seal(plaintext, fileKey, { kdf, generation, writtenAt });
    } finally {
      plaintext.fill(0);
    }
    const max = this.#options.maxBytes ?? MAX_KEYSTORE_BYTES;
    if (sealed.length > max) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `the keystore would grow to ${sealed.length} bytes, past its ${max}-byte limit`);
    // Our lock may have been judged stale and broken while we were slow: then another writer may be at work.
    if (!lock.holds()) throw new KeyfleetError('KF_CONFLICT', `lost the lock on ${this.path}; nothing was written`, { detail: 'locked' });
    writeFileAtomic(this.path, sealed, this.#options.onWriteStage ? { onStage: this.#options.onWriteStage } : {});
    const snapshot = freeze(contents, generation, writtenAt, kdf.name);
    this.#cache = { bytes: sealed, snapshot };
    return snapshot;
  }

  // ---------------------------------------------------------------- conveniences

  /** Metadata of every item and app configuration; no key material. */
  async list(): Promise<KeystoreListing> {
    return listContents(await this.snapshot(), this.path);
  }

  /** One item as PKCS#12 (with its key) or PEM, for `keyfleet device keystore export`. */
  async export(thumbprint: string, options: ExportOptions, kind?: KeystoreItemKind): Promise<Uint8Array> {
    return exportItem(await this.snapshot(), thumbprint, options, kind);
  }

  /** Removes every entry with this thumbprint (all kinds but the identity unless `kinds` says); returns how many. */
  async remove(thumbprint: string, kinds?: readonly KeystoreItemKind[]): Promise<number> {
    return (await this.update((d) => d.remove(thumbprint, kinds))).result;
  }

  /** Adds certificates the mail side found to the contacts; returns those not held before. */
  async addContacts(certificates: readonly Certificate[], source: ContactSource): Promise<readonly Certificate[]> {
    return (await this.update((d) => certificates.filter((c) => d.addContact(c, source)))).result;
  }
}

function freeze(c: KeystoreContents, generation: number, writtenAt: Date, kdf: 'key-file' | 'scrypt'): KeystoreSnapshot {
  return Object.freeze({
    identity: c.identity,
    signing: Object.freeze([...c.signing]),
    encryption: Object.freeze([...c.encryption]),
    trustedRoots: Object.freeze([...c.trustedRoots]),
    appConfigurations: Object.freeze([...c.appConfigurations]),
    contacts: Object.freeze([...c.contacts]),
    generation,
    writtenAt,
    kdf,
  });
}
