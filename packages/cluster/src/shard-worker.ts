/**
 * Entry of a shard worker thread (started by ShardHost): runs one
 * ShardActor from `workerData` and reports its lifecycle to the host (see
 * worker-messages.ts). Exit codes: 0 after a clean close, 1 when the actor
 * could not start or its shard failed, or on an uncaught exception.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ShardActor } from "./shard-actor.js";
import type { HostMessage, WorkerConfig, WorkerMessage } from "./worker-messages.js";

const port = parentPort;
if (!port) throw new Error("shard-worker.ts runs in a worker thread started by ShardHost");
const config = workerData as WorkerConfig;
const post = (message: WorkerMessage) => port.postMessage(message);

function describe(error: unknown): { message: string; code?: string } {
  const e = error as { message?: unknown; code?: unknown };
  const message = typeof e?.message === "string" ? e.message : String(error);
  return typeof e?.code === "string" ? { message, code: e.code } : { message };
}

let actor: ShardActor;
try {
  actor = await ShardActor.start({
    natsUrl: config.natsUrl,
    natsAccess: config.natsAccess,
    cluster: config.cluster,
    clusterId: config.clusterId,
    join: false,
    shardId: config.shardId,
    dataDir: config.dataDir,
    slots: config.slots,
    shard: config.shard,
    replicate: config.replicate,
    logLevel: config.logLevel,
    ...config.tuning,
  });
} catch (error) {
  post({ type: "failed", ...describe(error) });
  process.exit(1);
}

port.on("message", (message: HostMessage) => {
  switch (message.type) {
    case "close":
      void actor.close().finally(() => process.exit(0));
      break;
    case "collect":
      void collect(message.id, message.what);
      break;
  }
});

/** The actor's readiness (and metrics) for the host's scrape or probe; a check that throws is not ready. */
async function collect(id: number, what: "metrics" | "readiness"): Promise<void> {
  const readiness: Record<string, string | null> = {};
  for (const [name, check] of Object.entries(actor.readiness())) {
    try {
      readiness[name] = await check();
    } catch (error) {
      readiness[name] = `check failed: ${describe(error).message}`;
    }
  }
  const metrics = what === "metrics" ? await actor.metricsJson() : [];
  post({ type: "collected", id, metrics, readiness });
}

void actor.done().then(async (exit) => {
  if (exit.kind !== "failed") return;
  post({ type: "failed", ...describe(exit.error) });
  await actor.close().catch(() => {});
  process.exit(1);
});

post({ type: "ready", slots: actor.ownedSlots().length });
