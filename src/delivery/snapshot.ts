/**
 * Reading one tenant's TenantSnapshot (evaluator.ts) from the store: groups
 * and memberships, assignments, policies, certificate profiles, and only
 * what evaluation needs of users and imported PFX certificates (their refs:
 * no names, no encrypted PFX or password), one query each, run
 * concurrently. Not one transaction: on SQLite that would hold the
 * database's write lock for the whole read (seconds at benchmark scale),
 * and on PostgreSQL it would pin every read to one connection. Instead the caller reads the audit head first and
 * labels the snapshot with it; a change that lands during the read moves
 * the head past that label, so the next EvaluatorCache call rebuilds.
 */
import type { AssignmentTarget, SmimePolicy } from '../policy/index.ts';
import type { DirectoryStore } from '../store/directory.ts';
import type { AssignmentRecord, ResourceCollection, ResourceRecord, ResourcesStore } from '../store/resources.ts';
import type { ProfileRef, TenantSnapshot } from './evaluator.ts';

/** The audit log's newest entry: its seq counts the tenant's changes. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** What a snapshot reads; a TenantStore is one. */
export interface SnapshotSource {
  readonly tenantId: string;
  readonly audit: { head(): Promise<AuditHead | undefined> };
  readonly directory: Pick<DirectoryStore, 'listUserRefs'>;
  readonly resources: Pick<ResourcesStore, 'directorySnapshot' | 'listAssignments' | 'listResources' | 'listUserPfxCertificateRefs'>;
}

const PAGE = 1000;

/** Reads the snapshot; `seq` is the audit head read before it (see the file comment). */
export async function readSnapshot(source: SnapshotSource, seq: number): Promise<TenantSnapshot> {
  const r = source.resources;
  const [directory, assignments, policies, profiles, apps, users, pfx] = await Promise.all([
    r.directorySnapshot(),
    r.listAssignments(),
    allResources(r, 'policy'),
    allResources(r, 'certificateProfile'),
    allResources(r, 'app'),
    source.directory.listUserRefs(),
    r.listUserPfxCertificateRefs(),
  ]);
  const byTarget = new Map<string, { kind: AssignmentRecord['collection']; id: string; include: string[]; exclude: string[] }>();
  for (const a of assignments) {
    const key = `${a.collection}:${a.resourceId}`;
    let target = byTarget.get(key);
    if (target === undefined) byTarget.set(key, (target = { kind: a.collection, id: a.resourceId, include: [], exclude: [] }));
    target[a.intent].push(a.groupId);
  }
  const targets: AssignmentTarget[] = [...byTarget.values()];
  return {
    seq,
    groupIds: directory.groupIds,
    memberships: directory.memberships,
    targets,
    policies: policies.map((p) => ({ id: p.id, policy: p.body as unknown as SmimePolicy })),
    profiles: profiles.map(profileRef),
    users,
    pfx,
    records: [...policies, ...profiles, ...apps],
  };
}

function profileRef(p: ResourceRecord): ProfileRef {
  const purpose = p.body['intendedPurpose'];
  return typeof purpose === 'string' ? { id: p.id, kind: p.kind, intendedPurpose: purpose } : { id: p.id, kind: p.kind };
}

async function allResources(r: SnapshotSource['resources'], collection: ResourceCollection): Promise<ResourceRecord[]> {
  const out: ResourceRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await r.listResources(collection, { limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}
