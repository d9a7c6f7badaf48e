/**
 * Apps from an Apple Volume Purchase Program token (issue 4: "sync it from
 * an Apple Volume Purchase Program token (model the sync behind an
 * interface)"). A VppSource lists the token's apps with their licence
 * counts; a sync turns them into Graph `iosVppApp` resources, so Outlook
 * bought through VPP can be targeted by the S/MIME policy like the App Store
 * one.
 *
 * Apple's service (https://vpp.itunes.apple.com/mdm/v2/assets) cannot be
 * reached from here, so the source in use is FileVppSource: a JSON file
 * holding Apple's "Get Assets" answer (`assets`: adamId, pricingParam,
 * productType, totalCount, assignedCount, availableCount, deviceAssignable,
 * …) and, beside it, the app metadata Apple's content lookup would give
 * (`results`, keyed by adamId: bundleId, name, artistName, url). The file's
 * location is server configuration, never named by a client.
 */
import { readFile, stat } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { type JsonSchema, checkSchema } from './json-schema.ts';
import { type IosVppApp, appStoreUrlSchema, bundleIdSchema, displayNameSchema, idSchema, iosVppAppSchema } from './resources.ts';

/** One app a VPP token holds licences for. */
export interface VppAsset {
  /** Apple's id for the store product. */
  readonly adamId: string;
  readonly bundleId: string;
  readonly name: string;
  readonly publisher?: string;
  readonly appStoreUrl?: string;
  /** Licences can be assigned to devices (not only to users). */
  readonly deviceAssignable: boolean;
  readonly totalCount: number;
  readonly assignedCount: number;
}

/** Where a token's apps come from: Apple's service in production, a file here. */
export interface VppSource {
  /** Keyfleet's id for the token (Graph `iosVppApp.vppTokenId`). */
  readonly tokenId: string;
  /** The token's iOS apps (books left out). KF_VPP_SOURCE_INVALID when the answer cannot be used. */
  listAssets(): Promise<VppAsset[]>;
}

/** The source a tenant syncs from, as the server was configured; undefined when it has none. */
export type VppSourceFor = (tenantId: string) => VppSource | undefined;

/** Apple pages assets 100 at a time; an organisation's whole answer, with metadata, stays far below this. */
export const MAX_VPP_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_VPP_ASSETS = 20_000;

const count = { type: 'integer', minimum: 0, maximum: 10_000_000 } as const satisfies JsonSchema;

/** An entry of Apple's `assets`; fields we do not use (retiredCount, revocable, …) are allowed, as Apple adds some. */
const assetSchema = {
  type: 'object',
  required: ['adamId', 'pricingParam', 'productType', 'totalCount', 'assignedCount', 'availableCount', 'deviceAssignable'],
  properties: {
    adamId: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[0-9]+$' },
    pricingParam: { type: 'string', enum: ['STDQ', 'PLUS'] },
    productType: { type: 'string', enum: ['App', 'Book'] },
    totalCount: count,
    assignedCount: count,
    availableCount: count,
    deviceAssignable: { type: 'boolean' },
    supportedPlatforms: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 32 } },
  },
} as const satisfies JsonSchema;

const metadataSchema = {
  type: 'object',
  required: ['bundleId', 'name'],
  properties: { bundleId: bundleIdSchema, name: displayNameSchema, artistName: displayNameSchema, url: appStoreUrlSchema },
} as const satisfies JsonSchema;

const fileSchema = {
  type: 'object',
  required: ['assets', 'results'],
  properties: { assets: { type: 'array', maxItems: MAX_VPP_ASSETS, items: assetSchema }, results: { type: 'object' } },
} as const satisfies JsonSchema;

interface AppleAsset {
  readonly adamId: string;
  readonly productType: 'App' | 'Book';
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly deviceAssignable: boolean;
  readonly supportedPlatforms?: readonly string[];
}

interface AppleMetadata {
  readonly bundleId: string;
  readonly name: string;
  readonly artistName?: string;
  readonly url?: string;
}

function invalid(message: string, cause?: unknown): KeyfleetError {
  return new KeyfleetError('KF_VPP_SOURCE_INVALID', message, cause === undefined ? undefined : { cause });
}

/** `check` with its schema refusals reported as the source's fault, not the caller's. */
function sourceChecked<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (isKeyfleetError(e, 'KF_USAGE')) throw invalid(e.message, e);
    throw e;
  }
}

/** The apps of a VPP file (see the module comment): iOS apps only, each with its metadata. */
export function parseVppAssetsFile(text: string): VppAsset[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalid('VPP file: not JSON', e);
  }
  const file = sourceChecked(() => checkSchema<{ assets: AppleAsset[]; results: Record<string, unknown> }>(fileSchema, json, 'VPP file'));
  const seen = new Set<string>();
  const out: VppAsset[] = [];
  for (const a of file.assets) {
    if (seen.has(a.adamId)) throw invalid(`VPP file: asset ${a.adamId} is listed twice`);
    seen.add(a.adamId);
    if (a.assignedCount > a.totalCount) throw invalid(`VPP file: asset ${a.adamId} has more licences assigned than it has`);
    // Books become Graph iosVppEBook, and macOS-only apps never reach an iPhone: neither is ours to sync.
    if (a.productType !== 'App' || (a.supportedPlatforms !== undefined && !a.supportedPlatforms.includes('iOS'))) continue;
    const raw = Object.hasOwn(file.results, a.adamId) ? file.results[a.adamId] : undefined;
    if (raw === undefined) throw invalid(`VPP file: app ${a.adamId} has no entry in results (its bundleId and name)`);
    const m = sourceChecked(() => checkSchema<AppleMetadata>(metadataSchema, raw, `VPP file: results.${a.adamId}`));
    out.push({
      adamId: a.adamId,
      bundleId: m.bundleId,
      name: m.name,
      ...(m.artistName === undefined ? {} : { publisher: m.artistName }),
      ...(m.url === undefined ? {} : { appStoreUrl: m.url }),
      deviceAssignable: a.deviceAssignable,
      totalCount: a.totalCount,
      assignedCount: a.assignedCount,
    });
  }
  return out;
}

/** A VPP token's answer kept in a file on the server. The file is read afresh at each sync. */
export class FileVppSource implements VppSource {
  readonly tokenId: string;
  readonly #path: string;
  readonly #maxBytes: number;

  constructor(path: string, tokenId: string, maxBytes: number = MAX_VPP_FILE_BYTES) {
    checkSchema(idSchema, tokenId, 'VPP token id');
    this.tokenId = tokenId;
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  async listAssets(): Promise<VppAsset[]> {
    // The path is the server's business: messages do not repeat it; the cause (logged) does.
    let bytes: Buffer;
    try {
      if ((await stat(this.#path)).size > this.#maxBytes) throw invalid(`VPP file: larger than ${this.#maxBytes} bytes`);
      bytes = await readFile(this.#path);
    } catch (e) {
      if (isKeyfleetError(e)) throw e;
      throw invalid('VPP file: the file configured on the server cannot be read', e);
    }
    // It may have grown between stat and read.
    if (bytes.length > this.#maxBytes) throw invalid(`VPP file: larger than ${this.#maxBytes} bytes`);
    return parseVppAssetsFile(bytes.toString('utf8'));
  }
}

/** The fields of an app record a VPP sync owns; the rest (description) are the admin's. */
export function vppAssetToApp(asset: VppAsset, vppTokenId: string): IosVppApp {
  return checkSchema<IosVppApp>(iosVppAppSchema, {
    kind: 'iosVppApp',
    displayName: asset.name,
    ...(asset.publisher === undefined ? {} : { publisher: asset.publisher }),
    bundleId: asset.bundleId,
    appStoreUrl: asset.appStoreUrl ?? `https://apps.apple.com/app/id${asset.adamId}`,
    vppTokenId,
    appleId: asset.adamId,
    totalLicenseCount: asset.totalCount,
    usedLicenseCount: asset.assignedCount,
    licensingType: { supportsUserLicensing: true, supportsDeviceLicensing: asset.deviceAssignable },
  }, 'VPP asset');
}

/** An iosVppApp already stored, as the sync sees it. */
export interface StoredVppApp {
  readonly id: string;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface VppSyncPlan {
  readonly create: readonly IosVppApp[];
  readonly update: readonly { readonly id: string; readonly app: IosVppApp }[];
  readonly unchanged: readonly string[];
}

/**
 * What a sync changes: an app for each asset not yet stored (matched by
 * token and adamId), an update where a synced field differs, nothing
 * otherwise, so a second sync of the same answer writes nothing. Apps the
 * token no longer lists are left alone: a policy may still target them.
 */
export function planVppSync(stored: readonly StoredVppApp[], assets: readonly VppAsset[], vppTokenId: string): VppSyncPlan {
  const byAdamId = new Map<string, StoredVppApp>();
  for (const s of stored) {
    if (s.body['kind'] === 'iosVppApp' && s.body['vppTokenId'] === vppTokenId && typeof s.body['appleId'] === 'string') byAdamId.set(s.body['appleId'], s);
  }
  const create: IosVppApp[] = [];
  const update: { id: string; app: IosVppApp }[] = [];
  const unchanged: string[] = [];
  for (const asset of assets) {
    const synced = sourceChecked(() => vppAssetToApp(asset, vppTokenId));
    const existing = byAdamId.get(asset.adamId);
    if (existing === undefined) {
      create.push(synced);
      continue;
    }
    const merged = { ...existing.body, ...synced } as IosVppApp;
    if (isDeepStrictEqual(merged, existing.body)) unchanged.push(existing.id);
    else update.push({ id: existing.id, app: merged });
  }
  return { create, update, unchanged };
}
