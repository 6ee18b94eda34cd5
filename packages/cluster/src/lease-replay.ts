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
import { LRUCache } from "lru-cache";

interface Grant {
  readonly leases: readonly Lease[];
  readonly bytes: number;
  /** The base key it is also filed under, if any. */
  readonly base: string | undefined;
}

/**
 * The bounds are lru-cache's (`ttl`, `max`, `maxSize` by each grant's
 * bytes), read without touching recency, so the oldest grant goes first, as
 * insertion order. Its clock is the time the caller passes (`perf`, with no
 * `ttlResolution` caching of it), shifted by one because lru-cache reads a
 * start time of 0 as "no TTL"; a grant is held while its age is at most
 * ttlMs.
 */
export class LeaseReplay {
  private readonly grants: LRUCache<string, Grant> | undefined;
  /** Base key → the keys of the grants filed under it, oldest first. */
  private readonly byBase = new Map<string, Set<string>>();
  private now = 0;

  constructor(
    ttlMs: number,
    maxEntries: number,
    private readonly maxBytes: number,
  ) {
    // Nothing to keep: lru-cache wants a bound of at least one entry.
    this.grants =
      maxEntries === 0 || maxBytes === 0 || ttlMs === 0
        ? undefined
        : new LRUCache<string, Grant>({
            max: maxEntries,
            maxSize: maxBytes,
            sizeCalculation: (grant) => Math.max(1, grant.bytes),
            ttl: ttlMs,
            ttlResolution: 0,
            perf: { now: () => this.now + 1 },
            dispose: (grant, k) => this.unfile(k, grant),
          });
  }

  /** Grants held. */
  get size(): number {
    this.grants?.purgeStale();
    return this.grants?.size ?? 0;
  }

  /** Encoded bytes of the grants held. */
  get bytes(): number {
    this.grants?.purgeStale();
    return this.grants?.calculatedSize ?? 0;
  }

  /** The grant made to (owner, requestId), if still held. */
  get(owner: string, requestId: string, now: number): readonly Lease[] | undefined {
    this.now = now;
    return this.grants?.get(key(owner, requestId), { updateAgeOnGet: false })?.leases;
  }

  /** Every grant filed under (owner, baseRequestId), oldest first, concatenated; empty when none. */
  getByBase(owner: string, baseRequestId: string, now: number): Lease[] {
    this.now = now;
    this.grants?.purgeStale();
    const keys = this.byBase.get(key(owner, baseRequestId));
    const leases: Lease[] = [];
    for (const k of keys ?? []) leases.push(...(this.grants?.peek(k)?.leases ?? []));
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
    if (this.grants === undefined || bytes > this.maxBytes) return;
    this.now = now;
    const k = key(owner, requestId);
    this.grants.delete(k);
    const base = baseRequestId === undefined ? undefined : key(owner, baseRequestId);
    this.grants.set(k, { leases, bytes, base });
    if (base !== undefined) {
      const keys = this.byBase.get(base);
      if (keys === undefined) this.byBase.set(base, new Set([k]));
      else keys.add(k);
    }
    this.grants.purgeStale();
  }

  /** A grant gone (expired, evicted, replaced): out of its base's index too. */
  private unfile(k: string, grant: Grant): void {
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
