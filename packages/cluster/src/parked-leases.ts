/**
 * Lease long-polls parked at a shard, waiting for runnable work.
 *
 * A lease that finds nothing runnable and may wait (`waitMs`) parks here.
 * When a request changes the engine (a submit, a complete that unblocks a
 * dependent, a retry), the actor serves the parked leases in the same
 * synchronous stretch as the change: their grants go into the change's
 * journal block, so a task submitted to an idle shard is granted in the
 * submit's own commit, one disk flush from submit to dispatch instead of
 * two. Parked leases are served first come, first served.
 *
 * A parked lease ends when it is served, when its owner's request is
 * looked up by a resend or by the coordinator that parked it (`cancel`:
 * from then on it grants nothing; see the actor's replay-only lease), or
 * when its `until` settles (its wait is up, the actor closes, or the
 * frontier moved by a timer — a lease expiry or a retry's backoff — which
 * the actor's waiting loop then tries on its own).
 */
import type { LeaseRequest } from "@frontier/protocol";

/** Why a parked lease stopped waiting. */
export type Wake<T> =
  | { readonly kind: "served"; readonly outcome: T }
  | { readonly kind: "cancelled" }
  | { readonly kind: "woken" };

interface Parked<T> {
  readonly request: LeaseRequest;
  /** The owner and client request id it is parked under (`cancel` matches on it). */
  readonly key: string;
  wake(wake: Wake<T>): void;
}

export class ParkedLeases<T> {
  /** Insertion-ordered: first come, first served. */
  private readonly queue = new Set<Parked<T>>();

  /** Leases parked now. */
  get size(): number {
    return this.queue.size;
  }

  /** Parks `request` under `key` until it is served, cancelled, or `until` settles. */
  wait(request: LeaseRequest, key: string, until: Promise<unknown>): Promise<Wake<T>> {
    return new Promise((resolve) => {
      const entry: Parked<T> = {
        request,
        key,
        wake: (wake) => {
          if (this.queue.delete(entry)) resolve(wake);
        },
      };
      this.queue.add(entry);
      void until.then(
        () => entry.wake({ kind: "woken" }),
        () => entry.wake({ kind: "woken" }),
      );
    });
  }

  /**
   * Offers each parked lease, oldest first, to `grant`, which grants
   * synchronously and returns the outcome, `undefined` when it has nothing
   * for this one (it stays parked), or `null` when it has nothing for any
   * (the loop stops).
   */
  serve(grant: (request: LeaseRequest) => T | undefined | null): void {
    for (const entry of this.queue) {
      const outcome = grant(entry.request);
      if (outcome === null) return;
      if (outcome !== undefined) entry.wake({ kind: "served", outcome });
    }
  }

  /** Ends every lease parked under `key`: it grants nothing more. */
  cancel(key: string): void {
    for (const entry of this.queue) if (entry.key === key) entry.wake({ kind: "cancelled" });
  }
}
