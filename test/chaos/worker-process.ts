/**
 * A chaos worker: one OS process running the SDK against the cluster, with
 * its transport recorded (and faults injected) by wire-tap.ts. Its history
 * goes to a file, one JSON line per event written synchronously, so a
 * SIGKILL loses nothing already reported; control lines (`{"ctl":…}`) go to
 * stdout for the harness.
 *
 * Modes:
 *  - "work": `client.work(handler, { concurrency })`. The handler does what
 *    the task's payload says (history.ts `ChaosPayload`): sleeps `ms`
 *    (aborted when the SDK says the lease is lost), throws for poison tasks
 *    and, now and then, for flaky ones.
 *  - "hold": a worker that stalls: it leases up to `hold.max` tasks, says
 *    `holding`, waits `hold.holdMs` (the harness SIGSTOPs it meanwhile, past
 *    the lease), then completes them with its old tokens and says `done`.
 *
 * Usage: node --conditions=source --import tsx worker-process.ts '<WorkerConfig JSON>'
 */
import { openSync, writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type WorkerEvent } from "@frontier/client";
import type { Task } from "@frontier/core";
import type { Op } from "@frontier/protocol";
import { type NatsAccess, natsConnectionOptions } from "@frontier/transport";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { ChaosPayload, HistoryEvent } from "./history.js";
import { tapConnection } from "./wire-tap.js";
import { WORKLOAD_TYPES } from "./workload.js";

export interface WorkerConfig {
  readonly natsUrl: string;
  /** The worker role's seed file and inbox prefix. */
  readonly natsAccess: NatsAccess;
  readonly cluster: string;
  readonly name: string;
  readonly historyFile: string;
  readonly mode: "work" | "hold";
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly waitMs: number;
  readonly requestTimeoutMs: number;
  readonly dropReply?: Partial<Record<Op, number>>;
  readonly hold?: { readonly max: number; readonly holdMs: number };
}

const PHASES: Partial<Record<WorkerEvent["type"], "started" | "completed" | "failed" | "lost">> = {
  "task:started": "started",
  "task:completed": "completed",
  "task:failed": "failed",
  "task:lost": "lost",
};

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;
const fd = openSync(config.historyFile, "a");
const emit = (event: HistoryEvent) => writeSync(fd, `${JSON.stringify(event)}\n`);
const control = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ctl: line["ctl"], ...line })}\n`);

const nc = await natsConnect({
  ...natsConnectionOptions(config.natsUrl, config.natsAccess),
  name: config.name,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 100,
  waitOnFirstConnect: true,
});
const client = await connect({
  nats: tapConnection(nc, { src: config.name, emit, faults: { dropReply: config.dropReply ?? {} } }),
  cluster: config.cluster,
  name: config.name,
  requestTimeoutMs: config.requestTimeoutMs,
  retry: { attempts: 10, baseMs: 100, maxMs: 1_000 },
});

// Orphaned (the test runner was killed): nobody will stop us, and NATS is gone for good.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(2);
}, 1_000).unref();

async function shutdown(code: number): Promise<never> {
  await client.close().catch(() => {});
  await nc.drain().catch(() => {});
  process.exit(code);
}

if (config.mode === "work") {
  const worker = client.work(handle, {
    types: WORKLOAD_TYPES,
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    waitMs: config.waitMs,
  });
  worker.on((event: WorkerEvent) => {
    const phase = PHASES[event.type];
    if (phase && "lease" in event && event.lease)
      emit({
        k: "exec",
        src: config.name,
        at: Date.now(),
        taskId: event.lease.taskId,
        token: event.lease.token,
        phase,
      });
  });
  process.on("SIGTERM", () => void worker.stop().then(() => shutdown(0)));
  void worker.done.catch((error: unknown) => {
    process.stderr.write(`worker ${config.name} stopped: ${String(error)}\n`);
    void shutdown(1);
  });
  control({ ctl: "ready" });
} else {
  control({ ctl: "ready" });
  const hold = config.hold ?? { max: 2, holdMs: 2_000 };
  let leases: Awaited<ReturnType<typeof client.lease>> = [];
  while (leases.length === 0)
    leases = await client.lease({
      max: hold.max,
      leaseMs: config.leaseMs,
      waitMs: 5_000,
      types: WORKLOAD_TYPES,
    });
  for (const l of leases)
    emit({ k: "exec", src: config.name, at: Date.now(), taskId: l.taskId, token: l.token, phase: "started" });
  control({ ctl: "holding", taskIds: leases.map((l) => l.taskId) });
  await sleep(hold.holdMs);
  const outcomes: string[] = [];
  for (const l of leases) {
    try {
      await client.complete(l, { retry: { attempts: 3 } });
      outcomes.push("completed");
    } catch (error) {
      outcomes.push((error as { code?: string }).code ?? String(error));
    }
  }
  control({ ctl: "done", outcomes });
  await shutdown(0);
}

async function handle(task: Task, context: { signal: AbortSignal }): Promise<void> {
  const payload = (task.payload ?? { ms: 10 }) as ChaosPayload;
  await sleep(payload.ms, undefined, { signal: context.signal });
  if (payload.poison) throw new Error(`poison task ${task.id}`);
  if (payload.flaky && Math.random() < payload.flaky) throw new Error(`flaky task ${task.id} threw`);
}
