/**
 * The step a shard's start is at, and a warning when one takes long.
 *
 * A start waits on things outside the process (NATS, JetStream's bucket,
 * the data directory's recovery), and most of them wait silently while
 * they retry. An operator whose shard has not said it serves after a
 * minute should not have to guess where it is: every `warnEveryMs` that a
 * step has not finished, the shard logs a warning naming it and how long it
 * has waited. It logs nothing when the start is quick.
 */
import type { Logger } from "pino";

/** How long a step may take before the first warning, and between warnings, ms. */
export const START_STEP_WARN_MS = 10_000;

export class StartProgress {
  private current: string;
  private stepSince: number;
  private readonly started: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly log: Pick<Logger, "warn">,
    firstStep: string,
    warnEveryMs = START_STEP_WARN_MS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.current = firstStep;
    this.started = this.stepSince = now();
    this.timer = setInterval(() => this.warn(), warnEveryMs);
    // A start that failed and forgot to call done() must not keep the process alive.
    this.timer.unref();
  }

  /** The start goes on to `step`. */
  at(step: string): void {
    this.current = step;
    this.stepSince = this.now();
  }

  /** The start is over (served, or failed): no more warnings. */
  done(): void {
    clearInterval(this.timer);
  }

  private warn(): void {
    const t = this.now();
    this.log.warn(
      {
        step: this.current,
        stepMs: Math.round(t - this.stepSince),
        startMs: Math.round(t - this.started),
      },
      `start: still waiting to ${this.current}`,
    );
  }
}
