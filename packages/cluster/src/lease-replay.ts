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
  /** The base key it is also filed under, if any. */
  readonly base: string | undefined;
  /** When it was put (the caller's clock). */
  readonly at: number;
}

/**
 * A Map in insertion order, which is age order: a grant is never
 * refreshed, and one put again under its key is deleted and put anew. So
 * every bound is kept by dropping from the front while the oldest is
 * expired or a bound is exceeded, O(dropped) per call. (lru-cache's
 * `purgeStale` walked every entry on each call, up to maxEntries per
 * settle: docs/benchmarks.md, "Session 13".) A grant is held while its
 * age is at most ttlMs.
 */
export class LeaseReplay {
  private readonly grants = new Map<string, Grant>();
  /** Base key → the keys of the grants filed under it, oldest first. */
  private readonly byBase = new Map<string, Set<string>>();
  private heldBytes = 0;
  /** The latest time a caller passed: what `size` and `bytes` expire by. */
  private now = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {
    this.enabled = maxEntries > 0 && maxBytes > 0 && ttlMs > 0;
  }

  /** Grants held. */
  get size(): number {
    this.evict();
    return this.grants.size;
  }

  /** Encoded bytes of the grants held. */
  get bytes(): number {
    this.evict();
    return this.heldBytes;
  }

  /** The grant made to (owner, requestId), if still held. */
  get(owner: string, requestId: string, now: number): readonly Lease[] | undefined {
    this.now = now;
    const grant = this.grants.get(key(owner, requestId));
    return grant === undefined || this.expired(grant) ? undefined : grant.leases;
  }

  /** Every grant filed under (owner, baseRequestId), oldest first, concatenated; empty when none. */
  getByBase(owner: string, baseRequestId: string, now: number): Lease[] {
    this.now = now;
    this.evict();
    const keys = this.byBase.get(key(owner, baseRequestId));
    const leases: Lease[] = [];
    for (const k of keys ?? []) {
      const grant = this.grants.get(k);
      if (grant !== undefined && !this.expired(grant)) leases.push(...grant.leases);
    }
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
    if (!this.enabled || bytes > this.maxBytes) return;
    this.now = now;
    const k = key(owner, requestId);
    this.drop(k);
    const base = baseRequestId === undefined ? undefined : key(owner, baseRequestId);
    // Counted as at least one byte, so an empty grant still counts against maxBytes.
    const counted = Math.max(1, bytes);
    this.grants.set(k, { leases, bytes: counted, base, at: now });
    this.heldBytes += counted;
    if (base !== undefined) {
      const keys = this.byBase.get(base);
      if (keys === undefined) this.byBase.set(base, new Set([k]));
      else keys.add(k);
    }
    this.evict();
  }

  private expired(grant: Grant): boolean {
    return this.now - grant.at > this.ttlMs;
  }

  /** Drops from the oldest while it is expired or a bound is exceeded. */
  private evict(): void {
    for (const [k, grant] of this.grants) {
      if (this.grants.size <= this.maxEntries && this.heldBytes <= this.maxBytes && !this.expired(grant))
        return;
      this.drop(k);
    }
  }

  /** A grant gone (expired, evicted, replaced): out of its base's index too. */
  private drop(k: string): void {
    const grant = this.grants.get(k);
    if (grant === undefined) return;
    this.grants.delete(k);
    this.heldBytes -= grant.bytes;
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
