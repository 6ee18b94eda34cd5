/**
 * Options of the coordinator: the defaults (with their units) and one
 * function, `fillOptions`, that fills and checks them and names the option in
 * its error.
 */
import { availableParallelism } from "node:os";
import { isValidToken, MAX_TOKEN_LENGTH } from "@frontier/protocol";
import { type NatsAccess, NatsAccessError, natsConnectionOptions } from "@frontier/transport";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { CoordinatorError, CoordinatorErrorCode } from "./errors.js";
import type { SlotDirectory } from "./slot-table.js";

/** How long the coordinator waits for a shard's reply to one request, ms. */
export const DEFAULT_SHARD_TIMEOUT_MS = 5_000;
/** How long `stats` waits for each shard's stats, ms. */
export const DEFAULT_STATS_TIMEOUT_MS = 2_000;
/**
 * A shard whose last frontier announcement is older than this (by the
 * coordinator's clock) is left out of lease routing, ms. Shards announce at
 * least every second, so this is three missed announcements.
 */
export const DEFAULT_FRONTIER_STALE_MS = 3_000;
/** How long a lease reply is kept for a retry with the same requestId, ms. */
export const DEFAULT_LEASE_REPLAY_MS = 60_000;
/** Most lease replies kept for retries; the oldest go first. */
export const DEFAULT_LEASE_REPLAY_ENTRIES = 10_000;
/**
 * Most lease long-polls a coordinator holds waiting at once (at itself or
 * parked at shards); one more is refused as OVERLOADED (retryable). A
 * waiting long-poll costs a few KB; this bounds them to tens of MB.
 */
export const DEFAULT_MAX_LONG_POLLS = 10_000;
/** Attempts at one part's `commit` (the first included) before the submit fails retryably. */
export const DEFAULT_COMMIT_ATTEMPTS = 5;
/** Pause before the second commit attempt, ms; doubled for each one after (with jitter, up to 2 s: the engine's backoffDelay). */
export const DEFAULT_COMMIT_BACKOFF_MS = 100;
/** Pause between attempts to open the slot bucket while it does not exist yet, ms. */
export const DEFAULT_SLOT_RETRY_MS = 1_000;
/**
 * Batches whose size (tasks plus prerequisite edges) is at most this are
 * validated inline, on the event loop; larger ones go to the thread pool, so
 * the coordinator keeps answering meanwhile. At this size checkBatch holds
 * the event loop for well under a millisecond, less than the hop to a worker
 * costs (see validation.bench.ts); a full batch of 1,000 chained tasks takes
 * 1-3 ms and goes to the pool.
 */
export const INLINE_VALIDATION_MAX_WORK = 500;
/** Validation threads: all but one core, at most 4. */
export const DEFAULT_POOL_SIZE = Math.max(1, Math.min(4, availableParallelism() - 1));
/** Interface the metrics endpoint binds by default. */
export const DEFAULT_METRICS_HOST = "127.0.0.1";

export interface CoordinatorOptions {
  /** NATS server(s) to connect to; the coordinator owns and closes this connection. Give this or `nc`. */
  readonly natsUrl?: string | readonly string[];
  /** Credentials and TLS for the connection the coordinator opens (@frontier/transport); none by default. */
  readonly natsAccess?: NatsAccess;
  /** A connection to use; the coordinator leaves it open on close. Give this or `natsUrl`. */
  readonly nc?: NatsConnection;
  /**
   * With `natsUrl`: keep trying until NATS answers instead of failing at once
   * (for a supervised coordinator process started before NATS). Default false.
   */
  readonly waitForNats?: boolean;
  /** Cluster name: the second token of every subject. */
  readonly cluster: string;
  /** Default: pino at "info" on stdout, named "frontier-coordinator". */
  readonly logger?: Logger;
  /** Serve Prometheus metrics on http://<metricsHost>:<port>/metrics; 0 picks a free port. Off when unset. */
  readonly metricsPort?: number;
  /** Default DEFAULT_METRICS_HOST. "0.0.0.0" to be scraped from other hosts. */
  readonly metricsHost?: string;
  /** Validation threads. Default DEFAULT_POOL_SIZE. */
  readonly poolSize?: number;
  /** Default INLINE_VALIDATION_MAX_WORK. 0 sends every non-empty batch to the pool. */
  readonly inlineValidationMaxWork?: number;
  readonly shardTimeoutMs?: number;
  readonly statsTimeoutMs?: number;
  readonly frontierStaleMs?: number;
  readonly leaseReplayMs?: number;
  readonly leaseReplayEntries?: number;
  /** See DEFAULT_MAX_LONG_POLLS. */
  readonly maxLongPolls?: number;
  /**
   * Default true: while this coordinator hears from only one shard, a
   * lease request goes to it with the worker's reply subject, and the shard
   * grants or holds the long-poll and answers the worker itself (one hop
   * fewer from a submit to an idle worker; such a long-poll is not counted
   * against `maxLongPolls`, as it waits at the shard). False: every lease
   * request is answered by this coordinator.
   */
  readonly forwardLongPolls?: boolean;
  readonly commitAttempts?: number;
  readonly commitBackoffMs?: number;
  readonly slotRetryMs?: number;
  /**
   * Where slot owners are read from. Default: the coordinator watches the
   * JetStream KV bucket `frontier-<cluster>-slots` itself.
   */
  readonly slots?: SlotDirectory;
  /**
   * The validation worker module (default: validate-worker.js beside this
   * file). For tests and instrumentation: it must default-export a function
   * with validate-worker's signature.
   */
  readonly validationWorker?: URL;
}

export interface FilledOptions {
  readonly natsUrl: string | readonly string[] | undefined;
  readonly natsAccess: NatsAccess;
  readonly nc: NatsConnection | undefined;
  readonly waitForNats: boolean;
  readonly cluster: string;
  readonly logger: Logger | undefined;
  readonly metricsPort: number | undefined;
  readonly metricsHost: string;
  readonly poolSize: number;
  readonly inlineValidationMaxWork: number;
  readonly shardTimeoutMs: number;
  readonly statsTimeoutMs: number;
  readonly frontierStaleMs: number;
  readonly leaseReplayMs: number;
  readonly leaseReplayEntries: number;
  readonly maxLongPolls: number;
  readonly forwardLongPolls: boolean;
  readonly commitAttempts: number;
  readonly commitBackoffMs: number;
  readonly slotRetryMs: number;
  readonly slots: SlotDirectory | undefined;
  readonly validationWorker: URL | undefined;
}

function invalid(option: string, expected: string, got: unknown): never {
  throw new CoordinatorError(
    CoordinatorErrorCode.INVALID_OPTION,
    `coordinator option ${option}: expected ${expected}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`,
  );
}

function int(
  options: CoordinatorOptions,
  key: keyof CoordinatorOptions,
  min: number,
  fallback: number,
): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    invalid(key, min === 0 ? "a non-negative integer" : `an integer ≥ ${min}`, v);
  }
  return v;
}

/** The options with defaults filled in; throws CoordinatorError INVALID_OPTION naming the first bad one. */
export function fillOptions(options: CoordinatorOptions): FilledOptions {
  if (typeof options !== "object" || options === null) invalid("(options)", "an object", options);
  if (!isValidToken(options.cluster)) {
    invalid("cluster", `1..${MAX_TOKEN_LENGTH} characters of A-Z a-z 0-9 _ -`, options.cluster);
  }
  if ((options.nc === undefined) === (options.natsUrl === undefined)) {
    invalid("natsUrl / nc", "exactly one of them", options.nc === undefined ? "neither" : "both");
  }
  const url = options.natsUrl;
  if (url !== undefined) {
    const urls = typeof url === "string" ? [url] : url;
    if (!Array.isArray(urls) || urls.length === 0 || urls.some((u) => typeof u !== "string" || u === "")) {
      invalid("natsUrl", "a URL or a non-empty list of URLs", url);
    }
  }
  const natsAccess = options.natsAccess ?? {};
  if (typeof natsAccess !== "object" || natsAccess === null) invalid("natsAccess", "an object", natsAccess);
  try {
    natsConnectionOptions(url ?? [], natsAccess);
  } catch (error) {
    if (!(error instanceof NatsAccessError)) throw error;
    invalid("natsAccess", "consistent NATS credentials and readable files", error.message);
  }
  const metricsPort = options.metricsPort;
  if (
    metricsPort !== undefined &&
    (!Number.isSafeInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)
  ) {
    invalid("metricsPort", "a port in 0..65535", metricsPort);
  }
  if (options.waitForNats !== undefined && typeof options.waitForNats !== "boolean") {
    invalid("waitForNats", "a boolean", options.waitForNats);
  }
  const metricsHost = options.metricsHost ?? DEFAULT_METRICS_HOST;
  if (typeof metricsHost !== "string" || metricsHost === "")
    invalid("metricsHost", "a host name", metricsHost);
  if (options.validationWorker !== undefined && !(options.validationWorker instanceof URL)) {
    invalid("validationWorker", "a URL", options.validationWorker);
  }
  return {
    natsUrl: url,
    natsAccess,
    nc: options.nc,
    waitForNats: options.waitForNats ?? false,
    cluster: options.cluster,
    logger: options.logger,
    metricsPort,
    metricsHost,
    poolSize: int(options, "poolSize", 1, DEFAULT_POOL_SIZE),
    inlineValidationMaxWork: int(options, "inlineValidationMaxWork", 0, INLINE_VALIDATION_MAX_WORK),
    shardTimeoutMs: int(options, "shardTimeoutMs", 1, DEFAULT_SHARD_TIMEOUT_MS),
    statsTimeoutMs: int(options, "statsTimeoutMs", 1, DEFAULT_STATS_TIMEOUT_MS),
    frontierStaleMs: int(options, "frontierStaleMs", 1, DEFAULT_FRONTIER_STALE_MS),
    leaseReplayMs: int(options, "leaseReplayMs", 0, DEFAULT_LEASE_REPLAY_MS),
    leaseReplayEntries: int(options, "leaseReplayEntries", 0, DEFAULT_LEASE_REPLAY_ENTRIES),
    maxLongPolls: int(options, "maxLongPolls", 1, DEFAULT_MAX_LONG_POLLS),
    forwardLongPolls: options.forwardLongPolls ?? true,
    commitAttempts: int(options, "commitAttempts", 1, DEFAULT_COMMIT_ATTEMPTS),
    commitBackoffMs: int(options, "commitBackoffMs", 0, DEFAULT_COMMIT_BACKOFF_MS),
    slotRetryMs: int(options, "slotRetryMs", 1, DEFAULT_SLOT_RETRY_MS),
    slots: options.slots,
    validationWorker: options.validationWorker,
  };
}
