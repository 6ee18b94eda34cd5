/**
 * How many leases a worker holds beyond its slots (`work()`'s prefetch).
 *
 * Fixed when the caller says; else adaptive: enough tasks to keep every
 * slot busy for two round trips to the cluster at the pace the handlers
 * have lately kept (tasks finished per ms × round trip × 2), within
 * [min, max]. With slow handlers that is the minimum — none, for a worker —
 * so a worker does not hoard tasks other workers could run, and a task with
 * a run time limit (which runs from its grant) does not spend it waiting
 * behind a slow handler for a slot.
 *
 * With fast handlers the pipeline, not the handlers, bounds the pace, and
 * the pace then says nothing of what the handlers could do: pace × round
 * trip is what the pipeline already holds, so the estimate would stay
 * wherever it started. So the worker also says when a slot went idle with
 * nothing waiting while the cluster had more to give (`starved`): a window
 * with such a moment doubles the prefetch; a window without one lets it
 * fall back by a quarter, towards the estimate, so it settles just above
 * what keeps the slots busy. A durable commit per round trip is what makes
 * this matter: each grant and complete waits for an fsync.
 */

/** The adaptive prefetch's ceiling. */
export const MAX_AUTO_PREFETCH = 256;
/** The pace is measured over windows at least this long, ms. */
const WINDOW_MS = 50;
/** Weight of the newest window in the running averages. */
const ALPHA = 0.3;
/** The round trip assumed before one was measured, ms. */
const INITIAL_ROUND_TRIP_MS = 5;

export class Prefetch {
  private finishes = 0;
  private windowStart: number;
  /** Tasks finished per ms, averaged. */
  private pace = 0;
  /** Round trip of a settle, ms, averaged. */
  private roundTripMs = INITIAL_ROUND_TRIP_MS;
  private current: number;
  /** A slot went idle for want of a lease in this window. */
  private starvedInWindow = false;

  constructor(
    private readonly min: number,
    private readonly max: number,
    /** A fixed prefetch (the caller's); undefined adapts. */
    private readonly fixed: number | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.windowStart = now();
    this.current = fixed ?? min;
  }

  /** A handler settled. */
  finished(): void {
    this.finishes++;
  }

  /** A slot went idle with nothing waiting, while the cluster had more runnable work than it granted. */
  starved(): void {
    this.starvedInWindow = true;
  }

  /**
   * A task waited for a slot until too little of its run time limit was
   * left, and was handed back: the buffer is larger than the handlers'
   * pace allows. Halves the prefetch now (adaptive only).
   */
  overheld(): void {
    if (this.fixed !== undefined) return;
    this.current = Math.max(this.min, Math.floor(this.current / 2));
  }

  /** A request to the cluster took `ms` from send to reply. */
  roundTrip(ms: number): void {
    this.roundTripMs = (1 - ALPHA) * this.roundTripMs + ALPHA * ms;
  }

  /** The prefetch now. */
  get value(): number {
    if (this.fixed !== undefined) return this.fixed;
    const now = this.now();
    const elapsed = now - this.windowStart;
    if (elapsed >= WINDOW_MS) {
      const pace = this.finishes / elapsed;
      this.pace = this.pace === 0 ? pace : (1 - ALPHA) * this.pace + ALPHA * pace;
      this.finishes = 0;
      this.windowStart = now;
      // Rounded, not ceiled: a handler that takes many round trips wants nothing held for it.
      const wanted = Math.round(this.pace * this.roundTripMs * 2);
      const next = this.starvedInWindow ? Math.max(1, this.current * 2) : Math.floor(this.current * 0.75);
      this.starvedInWindow = false;
      this.current = Math.max(this.min, Math.min(this.max, Math.max(wanted, next)));
    }
    return this.current;
  }
}
