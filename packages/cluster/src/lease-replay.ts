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
 */
import type { Lease } from "@frontier/core";

interface Grant {
  readonly leases: readonly Lease[];
  readonly bytes: number;
  readonly at: number;
}

export class LeaseReplay {
  private readonly grants = new Map<string, Grant>();
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

  /** Remembers a grant of `bytes` encoded bytes. */
  put(owner: string, requestId: string, leases: readonly Lease[], bytes: number, now: number): void {
    if (this.maxEntries === 0 || bytes > this.maxBytes) return;
    const k = key(owner, requestId);
    this.drop(k);
    this.grants.set(k, { leases, bytes, at: now });
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
  }
}

/** Owner and request id in one string; the length prefix keeps ("a:b", "c") apart from ("a", "b:c"). */
function key(owner: string, requestId: string): string {
  return `${owner.length}:${owner}${requestId}`;
}
