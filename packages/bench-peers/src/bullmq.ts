/**
 * BullMQ on its own redis-server: AOF on, `appendfsync everysec` (Redis's
 * default AOF policy: up to a second of acknowledged writes can be lost) or
 * `always` (an fsync per write, like Frontier's default), no RDB snapshots.
 * Chains are BullMQ flows (FlowProducer): a parent waits for its children, so
 * a chain of n steps is a flow nested n deep whose innermost child is step 0.
 */
import { join } from "node:path";
import { type FlowJob, FlowProducer, Queue, Worker } from "bullmq";
import { type Config, type Payload, packageVersion, type SystemName } from "./config.js";
import { freePort, sampleTree, spawnServer, tempDir, waitForPort } from "./proc.js";
import type { PrepareWorker, SystemHandle } from "./system.js";

export async function startBullmq(name: SystemName, config: Config): Promise<SystemHandle> {
  const fsync = name === "bullmq-always" ? "always" : "everysec";
  const dir = tempDir(name);
  const port = await freePort();
  const redis = spawnServer(
    "redis-server",
    config.redisBin,
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--appendonly",
      "yes",
      "--appendfsync",
      fsync,
      "--save",
      "",
      "--dir",
      dir.path,
      "--daemonize",
      "no",
    ],
    { logFile: join(dir.path, "redis.log") },
  );
  const connection = { host: "127.0.0.1", port };
  const queues = new Map<string, Queue>();
  let flows: FlowProducer | undefined;
  const stop = async () => {
    for (const q of queues.values()) await q.close().catch(() => {});
    await flows?.close().catch(() => {});
    await redis.stop();
    dir.remove();
  };
  try {
    await waitForPort(port, 10_000, redis);
  } catch (err) {
    await stop();
    throw err;
  }
  const queue = async (q: string): Promise<Queue> => {
    let queue = queues.get(q);
    if (queue === undefined) {
      queue = new Queue(q, { connection });
      queues.set(q, queue);
      await queue.waitUntilReady();
    }
    return queue;
  };
  const flowOf = (q: string, c: number, k: number): FlowJob => {
    // Built from the innermost child out, iteratively (a long chain is deep).
    let job: FlowJob = { name: "step", queueName: q, data: { c, k: 0 } };
    for (let step = 1; step <= k; step++) {
      job = { name: "step", queueName: q, data: { c, k: step }, children: [job] };
    }
    return job;
  };
  return {
    name,
    connection: { kind: "bullmq", port },
    dependencies: "native",
    cpuNote: "redis-server, with children (AOF rewrites)",
    settings: { appendonly: true, appendfsync: fsync, save: "", bullmq: packageVersion("bullmq") },
    sampleCpu: () => sampleTree([redis.pid]),
    async enqueueBatches(q, _prefix, n, batch) {
      const qu = await queue(q);
      for (let i = 0; i < n; i += batch) {
        const jobs: { name: string; data: Payload }[] = [];
        for (let j = i; j < Math.min(n, i + batch); j++) jobs.push({ name: "t", data: { i: j } });
        await qu.addBulk(jobs);
      }
    },
    async submitOne(q, _id, payload) {
      return (await queue(q)).add("t", payload);
    },
    async enqueueChains(q, _prefix, chains, length) {
      await queue(q);
      flows ??= new FlowProducer({ connection });
      const perCall = Math.max(1, Math.floor(1_000 / length));
      for (let c = 0; c < chains; c += perCall) {
        const batch: FlowJob[] = [];
        for (let ch = c; ch < Math.min(chains, c + perCall); ch++) batch.push(flowOf(q, ch, length - 1));
        await flows.addBulk(batch);
      }
    },
    async outstanding(q) {
      const counts = await (await queue(q)).getJobCounts(
        "wait",
        "active",
        "delayed",
        "prioritized",
        "waiting-children",
      );
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    stop,
  };
}

/** A BullMQ Worker with `concurrency`, counting its `completed` events (after moveToFinished). */
export const prepareBullmqWorker: PrepareWorker = async (spec, hooks) => {
  if (spec.connection.kind !== "bullmq") throw new Error("not a BullMQ connection");
  const worker = new Worker(spec.queue, async (job) => hooks.run(job.data as Payload), {
    connection: { host: "127.0.0.1", port: spec.connection.port },
    concurrency: spec.concurrency,
    autorun: false,
  });
  worker.on("completed", () => hooks.completed());
  worker.on("failed", (_job, err) => console.error(`bullmq worker: failed: ${err.message}`));
  worker.on("error", (err) => console.error(`bullmq worker: ${err.message}`));
  await worker.waitUntilReady();
  return {
    async start() {
      void worker.run().catch((err: unknown) => console.error(`bullmq worker: ${String(err)}`));
    },
    stop: () => worker.close(),
  };
};
