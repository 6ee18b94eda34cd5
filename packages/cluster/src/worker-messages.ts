/**
 * Every message between a ShardHost (main thread) and one of its shard
 * workers, in one place. One worker runs one ShardActor; it has its own
 * NATS connection and LMDB environment, so the only traffic here is
 * lifecycle, and the host's scrape of the worker's metrics and readiness
 * (a `collect` answered by a `collected` with the same id).
 */
import type { MetricsJson } from "@frontier/metrics";

import type { NatsAccess } from "@frontier/transport";
import type { LogLevel, ShardActorTuning, ShardEngineOptions } from "./options.js";
import type { SlotSpec } from "./slots.js";

/** The worker's `workerData`: what its actor needs (plain data, structured-cloned). */
export interface WorkerConfig {
  readonly natsUrl: readonly string[];
  readonly natsAccess: NatsAccess;
  readonly cluster: string;
  /** The cluster identity the host checked: the worker's shard expects it (cluster-identity.ts). */
  readonly clusterId: string;
  readonly shardId: string;
  readonly dataDir: string;
  readonly slots: SlotSpec;
  readonly shard: ShardEngineOptions;
  /** Journal shipping (ShardActorOptions `replicate`). */
  readonly replicate: boolean;
  readonly tuning: Required<ShardActorTuning>;
  readonly logLevel: LogLevel;
}

/** Main thread → worker. */
export type HostMessage =
  /** Close the actor cleanly, then exit with code 0. */
  | { readonly type: "close" }
  /** Test hook: throw `reason` as an uncaught exception (the worker dies with code 1). */
  /**
   * Send the actor's readiness, and its metrics when `what` is "metrics"
   * (a readiness probe needs no metrics), answering with `id`.
   */
  | { readonly type: "collect"; readonly id: number; readonly what: "metrics" | "readiness" };

/** Worker → main thread. */
export type WorkerMessage =
  /** The actor serves, owning `slots` slots. */
  | { readonly type: "ready"; readonly slots: number }
  /** The actor could not start, or its shard failed; the worker exits with code 1 next. */
  | { readonly type: "failed"; readonly message: string; readonly code?: string }
  /**
   * The answer to `collect` `id`: the actor's metrics (Registry.getMetricsAsJSON,
   * each series labelled with its shard; empty when not asked for) and its
   * readiness checks' answers (null: ready, else why not).
   */
  | {
      readonly type: "collected";
      readonly id: number;
      readonly metrics: MetricsJson;
      readonly readiness: Readonly<Record<string, string | null>>;
    };
