/**
 * graphile-worker on the machine's PostgreSQL, a fresh database per run.
 * It has no dependencies between jobs: a chain is emulated by the handler
 * adding the next step (`helpers.addJob`) before it returns.
 */
import { EventEmitter } from "node:events";
import {
  type AddJobsJobSpec,
  Logger,
  makeWorkerUtils,
  run,
  runMigrations,
  type WorkerEvents,
} from "graphile-worker";
import pg from "pg";
import { type Config, type Payload, packageVersion, type SystemName } from "./config.js";
import { createDatabase, POSTGRES_CPU_NOTE, postgresSettings, samplePostgres } from "./pg.js";
import type { PrepareWorker, SystemHandle } from "./system.js";

/** Warnings and errors to stderr; graphile-worker logs a line per job at info. */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
});

export async function startGraphile(name: SystemName, config: Config): Promise<SystemHandle> {
  const db = await createDatabase(config.pgAdminUrl, "graphile");
  let utils: Awaited<ReturnType<typeof makeWorkerUtils>> | undefined;
  let pool: pg.Pool | undefined;
  const stop = async () => {
    await Promise.resolve(utils?.release()).catch(() => {});
    await pool?.end().catch(() => {});
    await db.drop();
  };
  let settings: Record<string, string>;
  try {
    settings = await postgresSettings(db.url);
    await runMigrations({ connectionString: db.url, logger: quietLogger });
    pool = new pg.Pool({ connectionString: db.url, max: 10 });
    const onError = (err: Error) => console.error(`graphile pool: ${err.message}`);
    pool.on("error", onError);
    pool.on("connect", (client) => client.on("error", onError));
    utils = await makeWorkerUtils({ pgPool: pool, logger: quietLogger });
  } catch (err) {
    await stop();
    throw err;
  }
  const u = utils;
  const p = pool;
  return {
    name,
    connection: { kind: "graphile", url: db.url },
    dependencies: "emulated",
    cpuNote: POSTGRES_CPU_NOTE,
    settings: { ...settings, "graphile-worker": packageVersion("graphile-worker") },
    sampleCpu: samplePostgres,
    async enqueueBatches(queue, _prefix, n, batch) {
      for (let i = 0; i < n; i += batch) {
        const specs: AddJobsJobSpec[] = [];
        for (let j = i; j < Math.min(n, i + batch); j++) specs.push({ identifier: queue, payload: { i: j } });
        await u.addJobs(specs);
      }
    },
    submitOne(queue, _id, payload) {
      return u.addJob(queue, payload);
    },
    async enqueueChains(queue, _prefix, chains) {
      for (let c = 0; c < chains; c += 100) {
        const specs: AddJobsJobSpec[] = [];
        for (let ch = c; ch < Math.min(chains, c + 100); ch++) {
          specs.push({ identifier: queue, payload: { c: ch, k: 0 } });
        }
        await u.addJobs(specs);
      }
    },
    async outstanding(queue) {
      const r = await p.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = $1",
        [queue],
      );
      return r.rows[0]?.n ?? 0;
    },
    stop,
  };
}

/**
 * `run({ concurrency, taskList })`, counting `job:success` events (emitted
 * when the handler resolved, before graphile-worker deletes the job; the
 * orchestrator waits for the deletions before it stops the clock).
 */
export const prepareGraphileWorker: PrepareWorker = async (spec, hooks) => {
  if (spec.connection.kind !== "graphile") throw new Error("not a graphile connection");
  const connectionString = spec.connection.url;
  // One connection opened before the clock starts, so the pool is warm.
  const pgPool = new pg.Pool({ connectionString, max: Math.max(10, spec.concurrency) });
  const onError = (err: Error) => console.error(`graphile worker pool: ${err.message}`);
  pgPool.on("error", onError);
  pgPool.on("connect", (client) => client.on("error", onError));
  (await pgPool.connect()).release();
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  const events = new EventEmitter() as WorkerEvents;
  events.on("job:success", () => hooks.completed());
  return {
    async start() {
      runner = await run({
        pgPool,
        concurrency: spec.concurrency,
        noHandleSignals: true,
        logger: quietLogger,
        events,
        taskList: {
          [spec.queue]: async (payload, helpers) => {
            await hooks.run(payload as Payload, (next) => helpers.addJob(spec.queue, next));
          },
        },
      });
    },
    async stop() {
      await runner?.stop();
      await pgPool.end();
    },
  };
};
