/**
 * What the crash-harness child reports, one JSON line per event, written
 * synchronously the moment it happens. Acknowledgements ("submit", "lease",
 * ...) are written after the shard's promise resolved; "req" lines before a
 * releasing call is made, so the checker can tell a release that was asked
 * for (maybe durable, maybe not) from one that never was.
 */
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
export type Event =
  | { t: "ready"; pid: number }
  | {
      t: "submit";
      key: string | undefined;
      tasks: { id: string; prerequisites: readonly string[] }[];
      taskIds: readonly string[];
      duplicate: boolean;
    }
  | { t: "resubmit"; key: string; taskIds: readonly string[]; duplicate: boolean }
  | { t: "lease"; id: string; token: number; expiresAt: number; leaseMs: number }
  | { t: "heartbeat"; id: string; token: number; expiresAt: number }
  | { t: "req"; op: "complete" | "fail"; id: string; token: number }
  | { t: "req"; op: "cancel"; id: string }
  | { t: "complete"; id: string; token: number; duplicate: boolean }
  | { t: "fail"; id: string; token: number; state: string }
  | { t: "cancel"; id: string }
  | { t: "fatal"; message: string };

/** Long leases outlive a round, so a lease granted before the kill is live after it. */
export const LEASE_MS = 60_000;
/** Short leases expire during a round and exercise the timer. */
export const SHORT_LEASE_MS = 100;

/** Retention longer than a run: no acknowledged task is compacted away before it is checked. */
export const HARNESS_SHARD_OPTIONS = {
  retentionMs: 3_600_000,
  backoff: { baseMs: 20, maxMs: 100 },
  defaultMaxAttempts: 4,
} as const;

/** A seeded PRNG (pure-rand's xoroshiro128+), so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}
