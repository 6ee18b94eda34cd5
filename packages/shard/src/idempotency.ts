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
  private readonly entries = new Map<string, IdempotencyEntry>();

  constructor(loaded: Iterable<readonly [string, IdempotencyEntry]> = []) {
    const sorted = [...loaded].sort((a, b) => a[1].createdAt - b[1].createdAt);
    for (const [key, entry] of sorted) this.entries.set(key, entry);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): IdempotencyEntry | undefined {
    return this.entries.get(key);
  }

  remember(key: string, entry: IdempotencyEntry): void {
    this.entries.set(key, entry);
  }

  /** Creation time of the oldest entry, or null when empty. O(1). */
  oldestCreatedAt(): number | null {
    for (const entry of this.entries.values()) return entry.createdAt;
    return null;
  }

  /** Removes the entries created at or before `cutoff`; returns their keys. O(expired). */
  expire(cutoff: number): string[] {
    const expired: string[] = [];
    for (const [key, entry] of this.entries) {
      if (entry.createdAt > cutoff) break;
      this.entries.delete(key);
      expired.push(key);
    }
    return expired;
  }
}
