/**
 * Frontier as a user runs it: its own nats-server (JetStream, store in a
 * temporary directory), `frontier start --shards N` in a child process, and
 * only the public SDK (`@frontier/client`) to submit and to work.
 */
import { join } from "node:path";
import { connect, type FrontierClient } from "@frontier/client";
import { type Config, type Payload, REPO_ROOT, type SystemName } from "./config.js";
import { freePort, sampleTree, spawnServer, tempDir, waitForPort, waitUntil } from "./proc.js";
import { deadlineBase, type PrepareWorker, type SystemHandle } from "./system.js";

type TaskInput = Parameters<FrontierClient["submit"]>[0][number];

/** `--order-window` of the systems that set one. */
const ORDER_WINDOWS: Partial<Record<SystemName, string>> = {
  "frontier-2-window": "1000",
  "frontier-2-per-shard": "shard",
};

/** Frontier's limit of tasks per submit. */
const MAX_BATCH = 1_000;

export async function startFrontier(name: SystemName, config: Config, run: number): Promise<SystemHandle> {
  const shards = name.startsWith("frontier-2") ? 2 : 1;
  const committed = name === "frontier-1-committed";
  const orderWindow = ORDER_WINDOWS[name];
  const dir = tempDir(name);
  const port = await freePort();
  const monitorPort = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const cluster = `bench${run}`;
  const nats = spawnServer(
    "nats-server",
    config.natsBin,
    ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-sd", join(dir.path, "nats")],
    { logFile: join(dir.path, "nats.log") },
  );
  let frontier: ReturnType<typeof spawnServer> | undefined;
  let client: FrontierClient | undefined;
  const stop = async () => {
    await client?.close().catch(() => {});
    await frontier?.stop(15_000);
    await nats.stop();
    dir.remove();
  };
  try {
    await waitForPort(port, 10_000, nats);
    frontier = spawnServer(
      "frontier start",
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "packages/cli/src/bin.ts",
        "start",
        "--nats",
        url,
        "--data",
        join(dir.path, "data"),
        "--shards",
        String(shards),
        "--cluster",
        cluster,
        ...(committed ? ["--durability", "committed"] : []),
        ...(orderWindow === undefined ? [] : ["--order-window", orderWindow]),
      ],
      { cwd: REPO_ROOT, logFile: join(dir.path, "frontier.log") },
    );
    client = await connect({ servers: url, cluster });
    const c = client;
    await waitUntil(
      `${name}: frontier start`,
      async () => {
        if (frontier!.child.exitCode !== null) {
          throw new Error(`frontier start exited (code ${frontier!.child.exitCode}); see its log`);
        }
        const stats = await c.stats({ timeoutMs: 1_000, retry: { attempts: 1 } });
        return stats.shards.answered.length === shards;
      },
      60_000,
      200,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const c = client;
  const base = deadlineBase();
  const task = (id: string, payload: Payload, seq: number): TaskInput => ({
    id,
    deadline: base + seq,
    payload,
  });
  const serverPids = [nats.pid, frontier.pid];
  return {
    name,
    connection: { kind: "frontier", url, cluster },
    dependencies: "native",
    cpuNote: "nats-server + the `frontier start` process (coordinator and shard threads), with children",
    settings: {
      shards,
      orderWindow: orderWindow ?? "0 (exact earliest-deadline-first across shards)",
      durability: committed
        ? "committed (an LMDB commit in the OS's page cache before any reply, flushed right after; fencing tokens reserved ahead, flushed)"
        : "default (flushed: an fsync'd LMDB commit before any reply)",
    },
    sampleCpu: () => sampleTree(serverPids),
    async sampleMessages() {
      const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as {
        in_msgs: number;
      };
      return varz.in_msgs;
    },
    async enqueueBatches(_queue, prefix, n, batch) {
      for (let i = 0; i < n; i += batch) {
        const tasks: TaskInput[] = [];
        for (let j = i; j < Math.min(n, i + batch); j++) tasks.push(task(`${prefix}-${j}`, { i: j }, j));
        await c.submit(tasks);
      }
    },
    async enqueueStream(_queue, prefix, n) {
      const s = c.submitter();
      function* tasks(): Generator<TaskInput> {
        for (let j = 0; j < n; j++) yield task(`${prefix}-${j}`, { i: j }, j);
      }
      const result = await s.submitAll(tasks());
      await s.close();
      if (result.rejected > 0) {
        throw new Error(`submitter rejected ${result.rejected} tasks: ${String(result.errors[0]?.error)}`);
      }
    },
    submitOne(_queue, id, payload) {
      return c.submit([{ id, deadline: Date.now() + 60_000, payload }]);
    },
    async enqueueChains(_queue, prefix, chains, length) {
      let batch: TaskInput[] = [];
      let seq = 0;
      for (let ch = 0; ch < chains; ch++) {
        const workflowId = `${prefix}-c${ch}`;
        for (let k = 0; k < length; k++) {
          batch.push({
            id: `${workflowId}-${k}`,
            deadline: base + seq++,
            workflowId,
            prerequisites: k === 0 ? [] : [`${workflowId}-${k - 1}`],
            payload: { c: ch, k },
          });
          if (batch.length === MAX_BATCH) {
            await c.submit(batch);
            batch = [];
          }
        }
      }
      if (batch.length > 0) await c.submit(batch);
    },
    async outstanding() {
      const { counts } = await c.stats();
      return counts.WAITING + counts.RUNNABLE + counts.LEASED;
    },
    stop,
  };
}

/** The SDK worker: `client.work(handler, { concurrency })`, counting `task:completed` events. */
export const prepareFrontierWorker: PrepareWorker = async (spec, hooks) => {
  if (spec.connection.kind !== "frontier") throw new Error("not a Frontier connection");
  const client = await connect({ servers: spec.connection.url, cluster: spec.connection.cluster });
  return {
    async start() {
      const worker = client.work(async (task) => hooks.run((task.payload ?? {}) as Payload), {
        concurrency: spec.concurrency,
        // The long-poll of an idle lease request (default 5 s): shorter only so that
        // stopping between scenarios does not wait 5 s; a busy worker never waits.
        waitMs: 1_000,
      });
      worker.on((event) => {
        if (event.type === "task:completed") hooks.completed();
        else if (event.type === "task:failed" || event.type === "task:lost" || event.type === "error") {
          console.error(`frontier worker: ${event.type}: ${String((event as { error?: unknown }).error)}`);
        }
      });
    },
    stop: () => client.close(),
  };
};
