/**
 * The shard's clock, in milliseconds: aligned with the wall clock when the
 * shard opens, monotonic after that.
 *
 *   now() = origin + (monotonic() - monotonicAtOpen)
 *   origin = max(wall clock at open, floor)
 *
 * `floor` is the largest clock reading the journal holds, so time never runs
 * backwards across a restart either. While the shard runs, a jump of the wall
 * clock (NTP step, operator) changes nothing: lease expiries, retry backoffs
 * and retention are measured on the monotonic clock. Across a restart the
 * downtime is measured by the wall clock (a monotonic clock does not survive
 * a reboot); if the wall clock went back meanwhile, the floor holds time at
 * the last reading, so a lease granted before the crash never lives longer
 * than its remaining length.
 */
export interface ClockSources {
  /** Wall clock, ms since the epoch. Default Date.now. */
  readonly wallNow?: () => number;
  /** Monotonic clock, ms from an arbitrary origin. Default performance.now. */
  readonly monotonicNow?: () => number;
}

export class ShardClock {
  private readonly origin: number;
  private readonly start: number;
  private readonly monotonic: () => number;
  private last = Number.NEGATIVE_INFINITY;

  constructor(floor: number, sources: ClockSources = {}) {
    const wall = sources.wallNow ?? Date.now;
    this.monotonic = sources.monotonicNow ?? (() => performance.now());
    this.start = this.monotonic();
    this.origin = Math.max(wall(), floor);
  }

  /** Whole milliseconds: every time the shard stores or sends (lease expiries, stamps) is an integer. */
  now(): number {
    const reading = Math.floor(this.origin + (this.monotonic() - this.start));
    // Guards an injected source that runs backwards.
    if (reading > this.last) this.last = reading;
    return this.last;
  }
}
