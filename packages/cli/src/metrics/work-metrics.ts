/**
 * `frontier work`'s metrics (`frontier_worker_*`): what this worker's
 * handlers did (started, succeeded, failed, how long they ran), what its
 * leases became (lost), its errors and empty polls, and what it holds now.
 * The handler's own outcome is timed here, around the handler, so the
 * duration is the command's run, not the complete's round trip after it.
 */
import type { TaskHandler, Worker, WorkerEvent } from "@frontier/client";
import { Counter, Gauge, Histogram, Registry, TASK_TIME_BUCKETS } from "@frontier/metrics";

export class WorkMetrics {
  readonly registry = new Registry();
  private worker: Worker | undefined;

  private readonly started = new Counter({
    name: "frontier_worker_tasks_started_total",
    help: "Tasks whose handler (the command) was started.",
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: "frontier_worker_tasks_finished_total",
    help: "Handlers that ended, by outcome: succeeded (the command exited 0) or failed (it did not, or could not start).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  private readonly lost = new Counter({
    name: "frontier_worker_leases_lost_total",
    help: "Leases lost while their task was held (expired, re-leased or cancelled): the outcome is dropped.",
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: "frontier_worker_errors_total",
    help: "Requests that failed, by what they were for: lease, heartbeat, complete, fail, release.",
    labelNames: ["during"],
    registers: [this.registry],
  });
  private readonly emptyPolls = new Counter({
    name: "frontier_worker_empty_polls_total",
    help: "Lease requests that came back empty: nothing was runnable within the long-poll.",
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "frontier_worker_handler_duration_seconds",
    help: "How long a handler (the command) ran, by outcome (succeeded, failed).",
    labelNames: ["outcome"],
    buckets: [...TASK_TIME_BUCKETS],
    registers: [this.registry],
  });

  constructor(concurrency: number) {
    const self = this;
    new Gauge({
      name: "frontier_worker_leases_held",
      help: "Leases held now: running handlers and tasks waiting for a slot.",
      registers: [this.registry],
      collect() {
        this.set(self.worker?.leasesHeld ?? 0);
      },
    });
    new Gauge({
      name: "frontier_worker_running_handlers",
      help: "Handlers (commands) running now.",
      registers: [this.registry],
      collect() {
        this.set(self.worker?.running ?? 0);
      },
    });
    new Gauge({
      name: "frontier_worker_concurrency",
      help: "Handlers this worker runs at once at most (--concurrency).",
      registers: [this.registry],
    }).set(concurrency);
    // Both outcomes from the start, so a failure ratio is defined before the first failure.
    for (const outcome of ["succeeded", "failed"]) this.finished.inc({ outcome }, 0);
  }

  /** `handler`, counted and timed. */
  timed(handler: TaskHandler): TaskHandler {
    return async (task, context) => {
      this.started.inc();
      const end = this.duration.startTimer();
      try {
        const result = await handler(task, context);
        end({ outcome: "succeeded" });
        this.finished.inc({ outcome: "succeeded" });
        return result;
      } catch (error) {
        end({ outcome: "failed" });
        this.finished.inc({ outcome: "failed" });
        throw error;
      }
    };
  }

  /** Follows the worker's events, and reads its leases at each scrape. */
  follow(worker: Worker): void {
    this.worker = worker;
    worker.on((e: WorkerEvent) => {
      if (e.type === "task:lost") this.lost.inc();
      else if (e.type === "idle") this.emptyPolls.inc();
      else if (e.type === "error") this.errors.inc({ during: e.during });
    });
  }
}
