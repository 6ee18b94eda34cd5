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
  latestTick,
  parseSchedule,
  type Schedule,
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

interface Armed {
  readonly schedule: Schedule;
  timer: NodeJS.Timeout | undefined;
}

export class ScheduleRunner {
  private readonly armed = new Map<string, Armed>();
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private loggedMissing = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly submit: SubmitTick,
    private readonly logger: Logger,
    private readonly retryMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts watching in the background (the bucket need not exist yet). */
  start(): void {
    this.running ??= this.run();
  }

  /** The schedules loaded now, by id. */
  schedules(): Schedule[] {
    return [...this.armed.values()].map((a) => a.schedule).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.stop();
    this.wake?.();
    for (const a of this.armed.values()) clearTimeout(a.timer);
    this.armed.clear();
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
    const before = this.armed.get(id);
    if (before !== undefined) clearTimeout(before.timer);
    this.armed.delete(id);
    if (e.operation !== "PUT") {
      this.logger.info({ schedule: id }, "schedule removed");
      return;
    }
    let schedule: Schedule;
    try {
      schedule = parseSchedule(JSON.parse(new TextDecoder().decode(e.value)));
      if (schedule.id !== id) throw new Error(`its id ${JSON.stringify(schedule.id)} is not its key's`);
    } catch (error) {
      this.logger.warn({ schedule: id, err: messageOf(error) }, "schedule ignored: not a valid schedule");
      return;
    }
    const armed: Armed = { schedule, timer: undefined };
    this.armed.set(id, armed);
    this.logger.info({ schedule: id, everyMs: schedule.everyMs }, "schedule loaded");
    // The latest tick due (if any) now, then each next one on time.
    const due = latestTick(schedule, this.now());
    if (due >= 0) this.fire(armed, due);
    this.arm(armed, due + 1);
  }

  private arm(armed: Armed, k: number): void {
    const at = armed.schedule.startAt + k * armed.schedule.everyMs;
    const timer = setTimeout(
      () => {
        if (this.armed.get(armed.schedule.id) !== armed) return; // replaced or removed meanwhile
        // The tick the clock says is due (a late timer skips none it can still make).
        const due = Math.max(k, latestTick(armed.schedule, this.now()));
        this.fire(armed, due);
        this.arm(armed, due + 1);
      },
      Math.max(0, at - this.now()),
    );
    timer.unref();
    armed.timer = timer;
  }

  private fire(armed: Armed, k: number): void {
    const { schedule } = armed;
    const tickAt = schedule.startAt + k * schedule.everyMs;
    const task = {
      id: scheduledTaskId(schedule.id, k),
      deadline: tickAt + schedule.deadlineInMs,
      ...(schedule.workflowId === undefined ? {} : { workflowId: schedule.workflowId }),
      ...(schedule.payload === undefined ? {} : { payload: schedule.payload }),
    };
    this.submit(task, scheduledKey(schedule.id, k)).then(
      () => this.logger.debug({ schedule: schedule.id, tick: k }, "scheduled task submitted"),
      (error: unknown) =>
        this.logger.warn(
          { schedule: schedule.id, tick: k, err: messageOf(error) },
          "scheduled task not submitted; the next tick comes on time (another coordinator may still have submitted this one)",
        ),
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
