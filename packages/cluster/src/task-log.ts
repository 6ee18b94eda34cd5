/**
 * One structured debug line per notable move of a task (issue 12's logs):
 * a failure that will be retried, a lease that ran out or was released, an attempt that timed
 * out, a task that ended badly (FAILED — a poison task once its attempts are
 * spent —, CANCELLED, EXPIRED), one leased or completed after its deadline.
 * With the task's id, workflow, attempt and the engine's reason; never its
 * payload or a lease's secret. Only when the shard logs at debug: otherwise
 * the engine builds no event at all (the observer has no taskEvent).
 */
import type { TaskEvent } from "@frontier/core";
import type { ShardObserver } from "@frontier/shard";
import type { Logger } from "pino";

const MESSAGES: Record<TaskEvent["kind"], string> = {
  retrying: "task failed; retried after a backoff",
  leaseExpired: "task's lease expired; it runs again",
  released: "task's lease released by its holder; it runs again, the attempt not spent",
  timedOut: "task's attempt timed out; retried after a backoff",
  ended: "task ended",
  leasedLate: "task leased after its deadline",
  completedLate: "task completed after its deadline",
};

/** `observer` (the shard's metrics), plus the debug lines when `log` writes debug; else `observer` itself. */
export function withTaskLog(observer: ShardObserver, log: Logger): ShardObserver {
  if (!log.isLevelEnabled("debug")) return observer;
  const taskEvent = (e: TaskEvent): void => {
    log.debug(
      {
        taskId: e.taskId,
        ...(e.workflowId === undefined ? {} : { workflowId: e.workflowId }),
        attempt: e.attempt,
        ...(e.state === undefined ? {} : { state: e.state }),
        ...(e.reason === undefined ? {} : { reason: e.reason }),
      },
      MESSAGES[e.kind],
    );
  };
  // Every other call goes to the metrics as it is (their `this` stays theirs: the proxy's get).
  return new Proxy(observer, {
    get: (target, property, receiver) =>
      property === "taskEvent" ? taskEvent : Reflect.get(target, property, receiver),
  });
}
