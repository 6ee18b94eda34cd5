/**
 * Recurring tasks, run by every coordinator: it watches the schedules
 * bucket (@frontier/protocol's schedules.ts) and, at each tick of each
 * schedule, submits that tick's task through its own SubmitRouter under the
 * tick's idempotency key. Every coordinator does, so a tick happens while
 * any one of them runs; the shard takes each tick's task once (its key), so
 * no tick is doubled however many coordinators submit it.
 *
 * A tick missed while no coordinator ran is not made up, except the latest
 * one due (submitted when the schedule is loaded): a schedule says "every
 * five minutes", not "as many times as five minutes fit into an outage".
 */
import {
  describeRecurrence,
  latestTick,
  nextTick,
  parseSchedule,
  type Schedule,
  type ScheduleTick,
  scheduleBucketName,
  scheduledKey,
  scheduledTaskId,
  scheduleIdOfKey,
} from "@frontier/protocol";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/nats-core";
import type { Logger } from "pino";

/** Submits one tick's task under its key; rejects when it was not accepted. */
export type SubmitTick = (
  task: {
    readonly id: string;
    readonly deadline: number;
    readonly workflowId?: string;
    readonly payload?: unknown;
  },
  idempotencyKey: string,
) => Promise<unknown>;

/** The time the schedules keep: the wall clock, and one-shot timers that hold no process alive. */
export interface ScheduleClock {
  /** Ms since the epoch. */
  now(): number;
  /** Calls `fire` in `ms`; the function returned cancels it. */
  setTimer(fire: () => void, ms: number): () => void;
}

export const SYSTEM_SCHEDULE_CLOCK: ScheduleClock = {
  now: Date.now,
  setTimer(fire, ms) {
    const timer = setTimeout(fire, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/**
 * The longest one timer is set for, ms (about 24.8 days): Node fires a longer
 * setTimeout at once. A tick further away is waited for in several timers.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface Armed {
  readonly schedule: Schedule;
  cancel: () => void;
}

/**
 * The schedules one coordinator runs, each armed for its next tick. Knows
 * nothing of NATS: `load` and `remove` are told what the bucket holds.
 *
 * Invariant: each loaded schedule has at most one timer, for its next tick
 * after the last one fired (or after the load); a replaced or removed
 * schedule's timer is cancelled, and one that fires anyway does nothing.
 */
export class ScheduleTimers {
  private readonly armed = new Map<string, Armed>();

  constructor(
    private readonly submit: SubmitTick,
    private readonly logger: Logger,
    private readonly clock: ScheduleClock = SYSTEM_SCHEDULE_CLOCK,
  ) {}

  /** The schedules loaded now, by id. */
  schedules(): Schedule[] {
    return [...this.armed.values()].map((a) => a.schedule).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Runs `schedule` (in place of any of its id): its latest tick due now, then each next one on time. */
  load(schedule: Schedule): void {
    this.remove(schedule.id);
    const armed: Armed = { schedule, cancel: () => {} };
    this.armed.set(schedule.id, armed);
    const now = this.clock.now();
    const next = nextTick(schedule, now);
    this.logger.info(
      {
        schedule: schedule.id,
        recurrence: describeRecurrence(schedule),
        next: next === undefined ? null : new Date(next.at).toISOString(),
      },
      "schedule loaded",
    );
    const due = latestTick(schedule, now);
    if (due !== undefined) this.fire(schedule, due);
    this.arm(armed, next);
  }

  /** Stops `id`'s ticks; true when it was loaded. */
  remove(id: string): boolean {
    const before = this.armed.get(id);
    if (before === undefined) return false;
    before.cancel();
    this.armed.delete(id);
    return true;
  }

  close(): void {
    for (const id of [...this.armed.keys()]) this.remove(id);
  }

  private arm(armed: Armed, tick: ScheduleTick | undefined): void {
    if (tick === undefined) {
      this.logger.info({ schedule: armed.schedule.id }, "schedule has no tick left");
      return;
    }
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, tick.at - this.clock.now()));
    armed.cancel = this.clock.setTimer(() => {
      if (this.armed.get(armed.schedule.id) !== armed) return; // replaced or removed meanwhile
      const now = this.clock.now();
      // Woken before the tick (a wait longer than one timer, or a timer early by a ms): wait on.
      if (now < tick.at) {
        this.arm(armed, tick);
        return;
      }
      // The tick the clock says is due (a late timer skips none it can still make).
      this.fire(armed.schedule, latestTick(armed.schedule, now) ?? tick);
      this.arm(armed, nextTick(armed.schedule, now));
    }, wait);
  }

  private fire(schedule: Schedule, tick: ScheduleTick): void {
    const task = {
      id: scheduledTaskId(schedule.id, tick.k),
      deadline: tick.at + schedule.deadlineInMs,
      ...(schedule.workflowId === undefined ? {} : { workflowId: schedule.workflowId }),
      ...(schedule.payload === undefined ? {} : { payload: schedule.payload }),
    };
    this.submit(task, scheduledKey(schedule.id, tick.k)).then(
      () => this.logger.debug({ schedule: schedule.id, tick: tick.k }, "scheduled task submitted"),
      (error: unknown) =>
        this.logger.warn(
          { schedule: schedule.id, tick: tick.k, err: messageOf(error) },
          "scheduled task not submitted; the next tick comes on time (another coordinator may still have submitted this one)",
        ),
    );
  }
}

/** Feeds a coordinator's ScheduleTimers from the cluster's schedules bucket, as it changes. */
export class ScheduleRunner {
  private readonly timers: ScheduleTimers;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private loggedMissing = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    submit: SubmitTick,
    private readonly logger: Logger,
    private readonly retryMs = 1_000,
    clock: ScheduleClock = SYSTEM_SCHEDULE_CLOCK,
  ) {
    this.timers = new ScheduleTimers(submit, logger, clock);
  }

  /** Starts watching in the background (the bucket need not exist yet). */
  start(): void {
    this.running ??= this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.stop();
    this.wake?.();
    this.timers.close();
    await this.running;
  }

  private async run(): Promise<void> {
    const bucket = scheduleBucketName(this.cluster);
    while (!this.closed) {
      try {
        const kv = await new Kvm(this.nc).open(bucket);
        await kv.status(); // the bucket exists (open alone does not ask)
        const watcher = await kv.watch({ key: "schedule.>" });
        this.watcher = watcher;
        this.loggedMissing = false;
        for await (const e of watcher) {
          if (this.closed) break;
          this.apply(e);
        }
      } catch (error) {
        if (this.closed) break;
        if (!this.loggedMissing) {
          this.logger.debug(
            { bucket, err: messageOf(error) },
            "no schedules bucket yet; looking again later",
          );
          this.loggedMissing = true;
        }
      }
      if (!this.closed)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.retryMs);
          timer.unref();
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
    }
  }

  private apply(e: KvWatchEntry): void {
    const id = scheduleIdOfKey(e.key);
    if (id === undefined) return;
    if (e.operation !== "PUT") {
      if (this.timers.remove(id)) this.logger.info({ schedule: id }, "schedule removed");
      return;
    }
    let schedule: Schedule;
    try {
      schedule = parseSchedule(JSON.parse(new TextDecoder().decode(e.value)));
      if (schedule.id !== id) throw new Error(`its id ${JSON.stringify(schedule.id)} is not its key's`);
    } catch (error) {
      this.timers.remove(id);
      this.logger.warn({ schedule: id, err: messageOf(error) }, "schedule ignored: not a valid schedule");
      return;
    }
    this.timers.load(schedule);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
