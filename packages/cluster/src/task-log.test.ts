import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ShardMetrics } from "./metrics/shard-metrics.js";
import { withTaskLog } from "./task-log.js";

function logger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}

describe("withTaskLog", () => {
  it("logs a task's notable moves at debug, with its id and reason, and leaves the metrics counting", async () => {
    const { log, lines } = logger("debug");
    const metrics = new ShardMetrics("s1");
    const observer = withTaskLog(metrics, log);
    observer.taskEvent?.({
      kind: "ended",
      taskId: "t1",
      workflowId: "w",
      attempt: 5,
      state: "FAILED",
      reason: "attempt 5 of 5 failed: boom",
    });
    observer.ended("FAILED");
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 20,
      msg: "task ended",
      taskId: "t1",
      workflowId: "w",
      attempt: 5,
      state: "FAILED",
      reason: "attempt 5 of 5 failed: boom",
    });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/frontier_shard_tasks_failed_total(\{[^}]*\})? 1/);
  });

  it("adds nothing when the log does not write debug: the engine then builds no event", () => {
    const { log } = logger("info");
    const metrics = new ShardMetrics("s1");
    const observer = withTaskLog(metrics, log);
    expect(observer).toBe(metrics);
    expect(observer.taskEvent).toBeUndefined();
  });
});
