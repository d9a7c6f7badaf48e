/**
 * Re-evaluating every device of a tenant (issue 4's "full re-evaluation
 * after a group membership change"): walks the devices in id order, in
 * batches of their few columns (DeviceRef, no certificates), computes each
 * one's desiredStateHash with the tenant's evaluator, and writes the hashes
 * that differ, one statement per batch. A device whose hash changed gets a
 * new version, and so a new check-in ETag: it is what the delivery issue
 * pushes to.
 *
 * Unchanged devices cost no write. Not one transaction: a device enrolled
 * or retired meanwhile is evaluated by its own path, and a concurrent run
 * writes the same hashes.
 */
import type { DeviceStore } from '../store/devices.ts';
import type { TenantEvaluator } from './evaluator.ts';

export interface ReevaluateOptions {
  /** Devices per read and per write (default 1000). */
  readonly batchSize?: number;
  /** Stamped as the changed devices' updatedAt (default: now). */
  readonly at?: Date;
}

export interface ReevaluateResult {
  readonly devices: number;
  /** Ids of the devices whose desired state changed, in id order. */
  readonly changed: string[];
  readonly ms: number;
}

export async function reevaluateAllDevices(
  tenant: { readonly devices: Pick<DeviceStore, 'listDeviceRefs' | 'setDesiredStateHashes'> },
  evaluator: TenantEvaluator,
  options: ReevaluateOptions = {},
): Promise<ReevaluateResult> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const at = options.at ?? new Date();
  const changed: string[] = [];
  let devices = 0;
  let after: string | undefined;
  for (;;) {
    const refs = await tenant.devices.listDeviceRefs(after, batchSize);
    if (refs.length === 0) break;
    const updates: { id: string; hash: string }[] = [];
    for (const ref of refs) {
      const hash = evaluator.desiredStateHashOf(ref);
      if (hash !== ref.desiredStateHash) updates.push({ id: ref.id, hash });
    }
    if (updates.length > 0) changed.push(...(await tenant.devices.setDesiredStateHashes(updates, at)));
    devices += refs.length;
    after = refs[refs.length - 1]!.id;
    if (refs.length < batchSize) break;
  }
  return { devices, changed, ms: performance.now() - started };
}
