/**
 * Every message between a ShardHost (main thread) and one of its shard
 * workers, in one place. One worker runs one ShardActor; it has its own
 * NATS connection and LMDB environment, so the only traffic here is
 * lifecycle.
 */

import type { NatsAccess } from "@frontier/transport";
import type { LogLevel, ShardActorTuning, ShardEngineOptions } from "./options.js";
import type { SlotSpec } from "./slots.js";

/** The worker's `workerData`: what its actor needs (plain data, structured-cloned). */
export interface WorkerConfig {
  readonly natsUrl: readonly string[];
  readonly natsAccess: NatsAccess;
  readonly cluster: string;
  readonly shardId: string;
  readonly dataDir: string;
  readonly slots: SlotSpec;
  readonly shard: ShardEngineOptions;
  readonly tuning: Required<ShardActorTuning>;
  readonly logLevel: LogLevel;
}

/** Main thread → worker. */
export type HostMessage =
  /** Close the actor cleanly, then exit with code 0. */
  | { readonly type: "close" }
  /** Test hook: throw `reason` as an uncaught exception (the worker dies with code 1). */
  | { readonly type: "crash"; readonly reason: string };

/** Worker → main thread. */
export type WorkerMessage =
  /** The actor serves, owning `slots` slots. */
  | { readonly type: "ready"; readonly slots: number }
  /** The actor could not start, or its shard failed; the worker exits with code 1 next. */
  | { readonly type: "failed"; readonly message: string; readonly code?: string };
