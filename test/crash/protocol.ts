/**
 * What the crash-harness child reports, one JSON line per event, written
 * synchronously the moment it happens. Acknowledgements ("submit", "lease",
 * ...) are written after the shard's promise resolved; "req" lines before a
 * releasing call is made, so the checker can tell a release that was asked
 * for (maybe durable, maybe not) from one that never was.
 */
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

/** A small seedable PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
