/**
 * pg-boss on the machine's PostgreSQL, a fresh database per run.
 *
 * The worker: pg-boss's own `work()` sleeps out its polling interval (at
 * least 0.5 s) after every fetch, even one that found jobs, so one `work()`
 * loop runs at most ~2 fetches a second whatever the load. To bound
 * concurrency at N without that cap, the worker is one dispatcher over
 * pg-boss's public `fetch()` / `complete()`, as Frontier's SDK worker leases:
 * it fetches as many jobs as it has free slots (`batchSize`), runs each and
 * completes each on its own, and fetches again as soon as a slot frees; a
 * fetch that found nothing waits 0.5 s (pg-boss's minimum polling interval)
 * or until a running job finishes — the wait a light-load latency of pg-boss
 * is made of.
 * (N loops fetching one job each were tried first: a fetch sorts every
 * waiting job of the queue, so with 30,000 waiting, 8 such loops drained
 * about 85 jobs/s and 64 of them overloaded the machine.) pg-boss has no
 * dependencies between jobs: a chain is emulated by the handler sending the
 * next step before it returns.
 */

import pg from "pg";
import PgBoss from "pg-boss";
import { type Config, type Payload, packageVersion, type SystemName } from "./config.js";
import { createDatabase, POSTGRES_CPU_NOTE, postgresSettings, samplePostgres } from "./pg.js";
import { sleep } from "./proc.js";
import type { PrepareWorker, SystemHandle } from "./system.js";

/** pg-boss's minimum polling interval (`pollingIntervalSeconds` ≥ 0.5). */
export const PGBOSS_POLL_MS = 500;

export async function startPgboss(name: SystemName, config: Config): Promise<SystemHandle> {
  const db = await createDatabase(config.pgAdminUrl, "pgboss");
  let boss: PgBoss | undefined;
  let pool: pg.Pool | undefined;
  const queues = new Set<string>();
  const stop = async () => {
    await boss?.stop({ graceful: false, wait: true }).catch(() => {});
    await pool?.end().catch(() => {});
    await db.drop();
  };
  let settings: Record<string, string>;
  try {
    settings = await postgresSettings(db.url);
    boss = new PgBoss({ connectionString: db.url });
    boss.on("error", (err) => console.error(`pg-boss: ${err.message}`));
    await boss.start();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on("error", (err) => console.error(`pg-boss pool: ${err.message}`));
  } catch (err) {
    await stop();
    throw err;
  }
  const b = boss;
  const p = pool;
  const queue = async (q: string) => {
    if (!queues.has(q)) {
      await b.createQueue(q);
      queues.add(q);
    }
  };
  return {
    name,
    connection: { kind: "pgboss", url: db.url },
    dependencies: "emulated",
    cpuNote: POSTGRES_CPU_NOTE,
    settings: { ...settings, "pg-boss": packageVersion("pg-boss"), workerEmptyPollMs: PGBOSS_POLL_MS },
    sampleCpu: samplePostgres,
    async enqueueBatches(q, _prefix, n, batch) {
      await queue(q);
      for (let i = 0; i < n; i += batch) {
        const jobs: PgBoss.JobInsert[] = [];
        for (let j = i; j < Math.min(n, i + batch); j++) jobs.push({ name: q, data: { i: j } });
        await b.insert(jobs);
      }
    },
    async submitOne(q, _id, payload) {
      await queue(q);
      return b.send(q, payload);
    },
    async enqueueChains(q, _prefix, chains) {
      await queue(q);
      for (let c = 0; c < chains; c += 100) {
        const jobs: PgBoss.JobInsert[] = [];
        for (let ch = c; ch < Math.min(chains, c + 100); ch++) jobs.push({ name: q, data: { c: ch, k: 0 } });
        await b.insert(jobs);
      }
    },
    async outstanding(q) {
      const r = await p.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')",
        [q],
      );
      return r.rows[0]?.n ?? 0;
    },
    stop,
  };
}

/**
 * One dispatcher loop (see the header): fetch as many jobs as there are free
 * slots, run each, complete each on its own; fetch again at once while jobs
 * come back and a slot is free; after an empty fetch, again after the
 * polling interval or as soon as a running job finishes, whichever is first.
 */
export const preparePgbossWorker: PrepareWorker = async (spec, hooks) => {
  if (spec.connection.kind !== "pgboss") throw new Error("not a pg-boss connection");
  const boss = new PgBoss({ connectionString: spec.connection.url });
  boss.on("error", (err) => console.error(`pg-boss worker: ${err.message}`));
  await boss.start();
  await boss.createQueue(spec.queue);
  let stopping = false;
  let running = 0;
  let slotFreed: (() => void) | undefined;
  const runOne = async (job: PgBoss.Job<Payload>) => {
    try {
      await hooks.run(job.data, (next) => boss.send(spec.queue, next as object));
      await boss.complete(spec.queue, job.id);
      hooks.completed();
    } catch (err) {
      console.error(`pg-boss worker: ${(err as Error).message}`);
      await boss.fail(spec.queue, job.id).catch(() => {});
    } finally {
      running--;
      slotFreed?.();
    }
  };
  const dispatch = async () => {
    while (!stopping) {
      const free = spec.concurrency - running;
      if (free === 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
        });
        slotFreed = undefined;
        continue;
      }
      let jobs: PgBoss.Job<Payload>[];
      try {
        jobs = await boss.fetch<Payload>(spec.queue, { batchSize: free });
      } catch (err) {
        if (!stopping) console.error(`pg-boss worker: fetch: ${(err as Error).message}`);
        await sleep(PGBOSS_POLL_MS);
        continue;
      }
      if (jobs.length === 0) {
        // Poll again after the interval, or as soon as a running job finishes (it may have sent one).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, PGBOSS_POLL_MS);
          slotFreed = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        slotFreed = undefined;
        continue;
      }
      for (const job of jobs) {
        running++;
        void runOne(job);
      }
    }
  };
  let loop: Promise<void> | undefined;
  return {
    async start() {
      loop = dispatch();
    },
    async stop() {
      stopping = true;
      slotFreed?.();
      await loop;
      while (running > 0) await sleep(10);
      await boss.stop({ graceful: false, wait: true });
    },
  };
};
