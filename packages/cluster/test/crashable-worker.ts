/**
 * A shard worker for tests that can be made to crash: the real worker
 * (../src/shard-worker.ts), plus a listener on a BroadcastChannel that
 * throws an uncaught exception in this thread when told to, as a bug would.
 * Given to a ShardHost as its `workerEntry`; `crashWorker` tells it. Nothing
 * of this ships: production workers have no way to be crashed on request.
 */
import { BroadcastChannel, workerData } from "node:worker_threads";
import type { WorkerConfig } from "../src/worker-messages.js";

export const CRASH_CHANNEL = "frontier-test:crash-shard-worker";

const channel = new BroadcastChannel(CRASH_CHANNEL);
channel.unref(); // the worker's life is the actor's, not this listener's
channel.onmessage = (event) => {
  const { shardId, reason } = (event as { data: { shardId: string; reason: string } }).data;
  if (shardId !== (workerData as WorkerConfig).shardId) return;
  setImmediate(() => {
    throw new Error(reason);
  });
};

await import("../src/shard-worker.js");
