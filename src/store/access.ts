/**
 * Admin API tokens. A token is presented before its tenant is known, so
 * finding it by its hash is a store-wide operation (TokenLookup, on Store);
 * everything else is tenant-scoped (AccessStore, on TenantStore).
 */

export const ADMIN_ROLES = ['administrator', 'policyManager', 'helpDesk'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

export interface ApiTokenRecord {
  readonly id: string;
  readonly name: string;
  readonly role: AdminRole;
  /**
   * SHA-256 of the secret, lower-case hex. A plain hash is enough: the secret is 32 random bytes, so no
   * dictionary or brute force can invert it, and a deterministic hash lets the token be found by an index.
   */
  readonly secretHash: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | undefined;
  readonly revokedAt: Date | undefined;
}

export interface AccessStore {
  /** Inserts; a duplicate id or secret hash is KF_CONFLICT. */
  putToken(record: ApiTokenRecord): Promise<void>;
  getToken(id: string): Promise<ApiTokenRecord | undefined>;
  /** Ordered by creation, then id. */
  listTokens(): Promise<ApiTokenRecord[]>;
  /** Marks the token revoked; false when unknown or already revoked. */
  revokeToken(id: string, at: Date): Promise<boolean>;
}

export interface FoundToken {
  readonly tenantId: string;
  readonly token: ApiTokenRecord;
}

export interface TokenLookup {
  /** The token with this secret hash, revoked or not, in whichever tenant holds it. */
  findByHash(secretHash: string): Promise<FoundToken | undefined>;
  /** Records a use; writes only when the stored time is older than `coarserThanMs`, to keep reads cheap. */
  markUsed(tenantId: string, id: string, at: Date, coarserThanMs: number): Promise<void>;
  /** Whether any token exists in any tenant (a first start creates the first one). */
  anyTokens(): Promise<boolean>;
}
