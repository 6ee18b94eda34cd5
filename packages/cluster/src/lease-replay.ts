/**
 * Lease grants kept for retries: a lease request that is sent again with the
 * same (owner, requestId) — its reply was lost, or timed out — gets the same
 * grant instead of a second one, which would strand the first grant's tasks
 * until their leases expired.
 *
 * Bounded three ways: entries older than `ttlMs` are dropped, and the oldest
 * go first once there are more than `maxEntries` or more than `maxBytes`
 * (encoded size of the leases). Insertion order is age order (no entry is
 * ever refreshed), so eviction pops from the front: O(evicted).
 *
 * A grant is kept by its send (the client's attempt and the coordinator's
 * ask in its fill, with the client's request id) and may also be filed under
 * the client's request id alone, so a replay-only request finds every grant
 * made for that client request, whatever send made it.
 */
import type { Lease } from "@frontier/core";

interface Grant {
  readonly leases: readonly Lease[];
  readonly bytes: number;
  readonly at: number;
  /** The base key it is also filed under, if any. */
  readonly base: string | undefined;
}

export class LeaseReplay {
  private readonly grants = new Map<string, Grant>();
  /** Base key → the keys of the grants filed under it, oldest first. */
  private readonly byBase = new Map<string, Set<string>>();
  private totalBytes = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** Grants held. */
  get size(): number {
    return this.grants.size;
  }

  /** Encoded bytes of the grants held. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The grant made to (owner, requestId), if still held. */
  get(owner: string, requestId: string, now: number): readonly Lease[] | undefined {
    this.expire(now);
    return this.grants.get(key(owner, requestId))?.leases;
  }

  /** Every grant filed under (owner, baseRequestId), oldest first, concatenated; empty when none. */
  getByBase(owner: string, baseRequestId: string, now: number): Lease[] {
    this.expire(now);
    const keys = this.byBase.get(key(owner, baseRequestId));
    const leases: Lease[] = [];
    for (const k of keys ?? []) leases.push(...(this.grants.get(k)?.leases ?? []));
    return leases;
  }

  /** Remembers a grant of `bytes` encoded bytes, also under `baseRequestId` when given. */
  put(
    owner: string,
    requestId: string,
    leases: readonly Lease[],
    bytes: number,
    now: number,
    baseRequestId?: string,
  ): void {
    if (this.maxEntries === 0 || bytes > this.maxBytes) return;
    const k = key(owner, requestId);
    this.drop(k);
    const base = baseRequestId === undefined ? undefined : key(owner, baseRequestId);
    this.grants.set(k, { leases, bytes, at: now, base });
    if (base !== undefined) {
      const keys = this.byBase.get(base);
      if (keys === undefined) this.byBase.set(base, new Set([k]));
      else keys.add(k);
    }
    this.totalBytes += bytes;
    this.expire(now);
  }

  private expire(now: number): void {
    for (const [k, grant] of this.grants) {
      const over = this.grants.size > this.maxEntries || this.totalBytes > this.maxBytes;
      if (!over && now - grant.at < this.ttlMs) break;
      this.drop(k);
    }
  }

  private drop(k: string): void {
    const grant = this.grants.get(k);
    if (!grant) return;
    this.grants.delete(k);
    this.totalBytes -= grant.bytes;
    if (grant.base === undefined) return;
    const keys = this.byBase.get(grant.base);
    keys?.delete(k);
    if (keys?.size === 0) this.byBase.delete(grant.base);
  }
}

/** Owner and request id in one string; the length prefix keeps ("a:b", "c") apart from ("a", "b:c"). */
function key(owner: string, requestId: string): string {
  return `${owner.length}:${owner}${requestId}`;
}
