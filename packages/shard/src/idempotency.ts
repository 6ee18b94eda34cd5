import type { IdempotencyEntry } from "./journal.js";

/**
 * Idempotency keys of accepted submits, with their results.
 *
 * Invariant: the map's insertion order is the order of `createdAt`. Entries
 * are added with the shard clock, which never runs backwards, and loaded
 * sorted; so the oldest entry is always first and expiry pops from the front,
 * O(1) per expired key, with no scan of the live ones.
 */
export class IdempotencyTable {
  private readonly rows = new Map<string, IdempotencyEntry>();

  constructor(loaded: Iterable<readonly [string, IdempotencyEntry]> = []) {
    const sorted = [...loaded].sort((a, b) => a[1].createdAt - b[1].createdAt);
    for (const [key, entry] of sorted) this.rows.set(key, entry);
  }

  get size(): number {
    return this.rows.size;
  }

  get(key: string): IdempotencyEntry | undefined {
    return this.rows.get(key);
  }

  remember(key: string, entry: IdempotencyEntry): void {
    this.rows.set(key, entry);
  }

  /** Every entry, oldest first. */
  entries(): IterableIterator<[string, IdempotencyEntry]> {
    return this.rows.entries();
  }

  /** Forgets `key` (its tasks moved away). */
  delete(key: string): void {
    this.rows.delete(key);
  }

  /** Creation time of the oldest entry, or null when empty. O(1). */
  oldestCreatedAt(): number | null {
    for (const entry of this.rows.values()) return entry.createdAt;
    return null;
  }

  /** Removes the entries created at or before `cutoff`; returns their keys. O(expired). */
  expire(cutoff: number): string[] {
    const expired: string[] = [];
    for (const [key, entry] of this.rows) {
      if (entry.createdAt > cutoff) break;
      this.rows.delete(key);
      expired.push(key);
    }
    return expired;
  }
}
