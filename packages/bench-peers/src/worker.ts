/**
 * The worker process: one per drain / latency / chain measurement, started
 * by the orchestrator (main.ts) with a `WorkerSpec` as JSON in argv[2] and
 * an IPC channel. It connects, says `ready`, starts working on `go`, reports
 * progress every second and `done` (elapsed, its own CPU, the latencies it
 * recorded) once it has seen `expect` completions; `report` asks for what it
 * has so far, `stop` stops it gracefully and ends the process.
 */
import type { FromWorker, Payload, ToWorker, WorkerSpec } from "./config.js";
import { nowMs } from "./proc.js";
import type { PreparedWorker, PrepareWorker, WorkerHooks } from "./system.js";

function send(msg: FromWorker): void {
  process.send?.(msg);
}

async function prepareFor(spec: WorkerSpec): Promise<PrepareWorker> {
  switch (spec.connection.kind) {
    case "frontier":
      return (await import("./frontier.js")).prepareFrontierWorker;
    case "bullmq":
      return (await import("./bullmq.js")).prepareBullmqWorker;
    case "graphile":
      return (await import("./graphile.js")).prepareGraphileWorker;
    case "pgboss":
      return (await import("./pgboss.js")).preparePgbossWorker;
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "") as WorkerSpec;
  if (process.send === undefined)
    throw new Error("worker.ts runs as a child of main.ts (needs an IPC channel)");

  let completed = 0;
  let goAt = 0;
  let cpuAtGo = process.cpuUsage();
  let reported = false;
  const latencies: number[] = [];
  /** longchain: when each step's handler returned (or, emulated, began to enqueue the next), by step. */
  const returned = new Map<number, number>();
  const cpuUs = () => {
    const d = process.cpuUsage(cpuAtGo);
    return d.user + d.system;
  };

  const hooks: WorkerHooks = {
    async run(payload: Payload, enqueueNext) {
      const start = nowMs();
      const k = payload.k ?? 0;
      if (spec.mode === "latency" && payload.t !== undefined) latencies.push(start - payload.t);
      if (spec.mode === "longchain" && k > 0) {
        const prev = returned.get(k - 1);
        if (prev !== undefined) {
          latencies.push(start - prev);
          returned.delete(k - 1);
        }
      }
      if ((spec.mode === "chain" || spec.mode === "longchain") && enqueueNext !== undefined) {
        if (spec.mode === "longchain") returned.set(k, nowMs());
        if (k < spec.chainLength - 1) await enqueueNext({ c: payload.c ?? 0, k: k + 1 });
        return;
      }
      if (spec.mode === "longchain") returned.set(k, nowMs());
    },
    completed() {
      completed++;
      if (completed === spec.expect && !reported) {
        reported = true;
        send({ type: "done", completed, elapsedMs: nowMs() - goAt, cpuUs: cpuUs(), latencies });
      }
    },
  };

  const prepare = await prepareFor(spec);
  const worker: PreparedWorker = await prepare(spec, hooks);
  let progress: NodeJS.Timeout | undefined;
  let stopping = false;

  process.on("message", (raw) => {
    const msg = raw as ToWorker;
    if (msg.type === "go") {
      goAt = nowMs();
      cpuAtGo = process.cpuUsage();
      progress = setInterval(() => send({ type: "progress", completed }), 1_000);
      worker.start().catch((err: unknown) => {
        send({ type: "fatal", message: `start: ${String(err)}` });
      });
    } else if (msg.type === "report") {
      send({ type: "partial", completed, elapsedMs: null, cpuUs: cpuUs(), latencies });
    } else if (msg.type === "stop" && !stopping) {
      stopping = true;
      clearInterval(progress);
      worker
        .stop()
        .catch((err: unknown) => console.error(`worker stop: ${String(err)}`))
        .finally(() => process.exit(0));
    }
  });
  // The orchestrator gone: nothing to report to.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready" });
}

main().catch((err: unknown) => {
  send({ type: "fatal", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 100);
});
