/**
 * Options of the client, the worker and the submitter: the defaults (with
 * their units) and one function per kind that fills and checks them, naming
 * the option in its error (an `InvalidArgumentError`).
 */
import { type BackoffPolicy, InvalidArgumentError, isTaskType, MAX_TASK_TYPE_LENGTH } from "@frontier/core";
import {
  isValidToken,
  MAX_ID_LENGTH,
  MAX_LEASE_TYPES,
  MAX_TASKS_PER_BATCH,
  MAX_TIMEOUT_MS,
  MAX_WAIT_MS,
} from "@frontier/protocol";
import type { NatsAccess } from "@frontier/transport";
import type { NatsConnection } from "@nats-io/nats-core";

/** Where `connect` looks for NATS when told nothing. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
/** The cluster name when none is given (subjects `frontier.default.…`). */
export const DEFAULT_CLUSTER = "default";
/** How long one request waits for its reply, in ms (a lease waits `waitMs` longer). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** How long `connect` tries to reach NATS, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/**
 * Retries of a request that failed retryably (timeout, no responders, a
 * shard recovering): attempts in all, and the backoff between them
 * (exponential, capped, with jitter). The defaults ride out about 3 s of a
 * cluster that is not answering.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 100, maxMs: 2_000, jitter: 0.5 };

/** Lease length of `work()` and `lease()`, in ms. */
export const DEFAULT_LEASE_MS = 30_000;
/** Long-poll of `work()`: how long one lease request waits for a runnable task, in ms. */
export const DEFAULT_WORK_WAIT_MS = 5_000;
/** `work()` heartbeats each lease every `leaseMs × DEFAULT_HEARTBEAT_FRACTION`. */
export const DEFAULT_HEARTBEAT_FRACTION = 1 / 3;
/** Handlers `work()` runs at once. */
export const DEFAULT_CONCURRENCY = 1;

/** Most tasks the submitter puts in one batch. */
export const DEFAULT_MAX_BATCH = 500;
/** How long the submitter waits for a batch to fill before sending it anyway, in ms. */
export const DEFAULT_LINGER_MS = 10;
/** Most tasks the submitter holds (queued or in flight) before `add()` waits. */
export const DEFAULT_MAX_PENDING = 10_000;

export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all, including the first; 1 never retries. */
  readonly attempts: number;
}

/**
 * Connect options. Besides these, the credentials and TLS settings of
 * `NatsAccess` (`user`/`pass`, `token`, `nkeySeedFile`, `credsFile`, `tls`,
 * `inboxPrefix`; credentials in the URL work too): see @frontier/transport.
 */
export interface ConnectOptions extends NatsAccess {
  /** NATS server URL(s). Default `DEFAULT_NATS_URL`. Ignored when `nats` is given. */
  readonly servers?: string | readonly string[];
  /** An open NATS connection to use instead of opening one; `close()` leaves it open. */
  readonly nats?: NatsConnection;
  /** Cluster name (a subject token). Default `DEFAULT_CLUSTER`. */
  readonly cluster?: string;
  /** Name of this client (lease owner by default). Default `<hostname>-<pid>-<random>`. */
  readonly name?: string;
  /** See `DEFAULT_REQUEST_TIMEOUT_MS`. */
  readonly requestTimeoutMs?: number;
  /** See `DEFAULT_CONNECT_TIMEOUT_MS`. */
  readonly connectTimeoutMs?: number;
  /** See `DEFAULT_RETRY`; fields not given keep their defaults. */
  readonly retry?: Partial<RetryPolicy>;
  /**
   * Send a submit whose tasks (and their ids' homes) all live on one shard straight to that shard
   * (one hop, not two), by the cluster's slot table, which the client then
   * watches; anything else, and whatever that shard cannot take, goes
   * through a coordinator. Default true. Needs the submitter role's rights
   * (docs/security.md); without them the client keeps to coordinators.
   */
  readonly directSubmit?: boolean;
}

export interface FilledConnectOptions {
  readonly servers: readonly string[];
  readonly cluster: string;
  readonly name: string;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly directSubmit: boolean;
}

export function fillConnectOptions(options: ConnectOptions, defaultName: string): FilledConnectOptions {
  const servers =
    options.servers === undefined
      ? [DEFAULT_NATS_URL]
      : typeof options.servers === "string"
        ? [options.servers]
        : [...options.servers];
  if (servers.length === 0 || servers.some((s) => typeof s !== "string" || s === "")) {
    throw new InvalidArgumentError("connect: option servers must be one or more NATS URLs");
  }
  const cluster = options.cluster ?? DEFAULT_CLUSTER;
  if (!isValidToken(cluster)) {
    throw new InvalidArgumentError(
      `connect: option cluster must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(cluster)}`,
    );
  }
  const name = options.name ?? defaultName;
  checkId("connect", "name", name);
  return {
    servers,
    cluster,
    name,
    requestTimeoutMs: positiveInt(
      "connect",
      "requestTimeoutMs",
      options.requestTimeoutMs,
      DEFAULT_REQUEST_TIMEOUT_MS,
    ),
    connectTimeoutMs: positiveInt(
      "connect",
      "connectTimeoutMs",
      options.connectTimeoutMs,
      DEFAULT_CONNECT_TIMEOUT_MS,
    ),
    retry: fillRetry("connect", options.retry),
    directSubmit: bool("connect", "directSubmit", options.directSubmit, true),
  };
}

export function fillRetry(
  where: string,
  retry: Partial<RetryPolicy> | undefined,
  base = DEFAULT_RETRY,
): RetryPolicy {
  const r = { ...base, ...retry };
  positiveInt(where, "retry.attempts", r.attempts, 1);
  nonNegative(where, "retry.baseMs", r.baseMs);
  nonNegative(where, "retry.maxMs", r.maxMs);
  if (!(r.jitter >= 0 && r.jitter <= 1)) {
    throw new InvalidArgumentError(`${where}: option retry.jitter must be in [0, 1], got ${r.jitter}`);
  }
  return r;
}

export interface WorkOptions {
  /** Handlers run at once; the worker leases only as many tasks as it has room for. See `DEFAULT_CONCURRENCY`. */
  readonly concurrency?: number;
  /** Lease length, ms. Heartbeats extend it while the handler runs. See `DEFAULT_LEASE_MS`. */
  readonly leaseMs?: number;
  /** Long-poll wait of each lease request, ms, 0..MAX_WAIT_MS. See `DEFAULT_WORK_WAIT_MS`. */
  readonly waitMs?: number;
  /**
   * Leases held beyond `concurrency`, waiting for a free slot, 0..1000: the
   * next tasks are at hand when a handler finishes, and leases come in
   * batches. Their leases are kept alive like running ones. 0 leases only
   * for free slots. Default: adaptive, from none up to MAX_AUTO_PREFETCH
   * (256): as many as the handlers get through in two round trips to the
   * cluster at their recent pace, once a slot went idle for want of one
   * (see prefetch.ts). A task's run time limit runs from its grant, so a
   * fixed prefetch with slow handlers spends the limits of the tasks it holds.
   */
  readonly prefetch?: number;
  /** Lease owner. Default: the client's name. */
  readonly owner?: string;
  /**
   * The task types this worker runs: 1..MAX_LEASE_TYPES distinct types
   * (each 1..64 of letters, digits, `_`, `.`, `-`); it leases only tasks of
   * these, earliest deadline first among them. Default: `["default"]`, the
   * type of tasks submitted without one, so a worker that names no types
   * never gets a typed task.
   */
  readonly types?: readonly string[];
  /** Heartbeat period as a fraction of `leaseMs`, in (0, 1). See `DEFAULT_HEARTBEAT_FRACTION`. */
  readonly heartbeatFraction?: number;
  /**
   * Run time limit of one attempt, ms, 1..MAX_TIMEOUT_MS, for tasks that
   * have no `timeoutMs` of their own (a task's own limit wins: the shard
   * enforces that one). Counted from the grant: when it passes, the
   * handler's signal aborts with an `AttemptTimeoutError`, heartbeats stop
   * and the task is failed (retryably) at once. Default: none.
   */
  readonly timeoutMs?: number;
  /** Aborting it stops the worker gracefully, as `stop()` does. */
  readonly signal?: AbortSignal;
}

export interface FilledWorkOptions {
  readonly concurrency: number;
  /** Undefined: adaptive. */
  readonly prefetch: number | undefined;
  readonly leaseMs: number;
  readonly waitMs: number;
  readonly owner: string;
  /** Undefined: the default type only. */
  readonly types: readonly string[] | undefined;
  readonly heartbeatMs: number;
  /** The worker's run time limit for tasks without their own. */
  readonly timeoutMs: number | undefined;
  readonly signal: AbortSignal | undefined;
}

export function fillWorkOptions(options: WorkOptions, defaultOwner: string): FilledWorkOptions {
  const concurrency = positiveInt("work", "concurrency", options.concurrency, DEFAULT_CONCURRENCY);
  if (concurrency > 1_000) {
    throw new InvalidArgumentError(`work: option concurrency must be at most 1000, got ${concurrency}`);
  }
  const prefetch = options.prefetch;
  if (prefetch !== undefined && (!Number.isSafeInteger(prefetch) || prefetch < 0 || prefetch > 1_000)) {
    throw new InvalidArgumentError(
      `work: option prefetch must be an integer in 0..1000, got ${String(prefetch)}`,
    );
  }
  const leaseMs = positiveInt("work", "leaseMs", options.leaseMs, DEFAULT_LEASE_MS);
  const waitMs = options.waitMs ?? DEFAULT_WORK_WAIT_MS;
  if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS) {
    throw new InvalidArgumentError(
      `work: option waitMs must be an integer in 0..${MAX_WAIT_MS}, got ${waitMs}`,
    );
  }
  const owner = options.owner ?? defaultOwner;
  checkId("work", "owner", owner);
  const types = checkTypes("work", options.types);
  const timeoutMs = options.timeoutMs;
  if (
    timeoutMs !== undefined &&
    (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS)
  ) {
    throw new InvalidArgumentError(
      `work: option timeoutMs must be an integer in 1..MAX_TIMEOUT_MS (${MAX_TIMEOUT_MS}), got ${String(timeoutMs)}`,
    );
  }
  const fraction = options.heartbeatFraction ?? DEFAULT_HEARTBEAT_FRACTION;
  if (!(fraction > 0 && fraction < 1)) {
    throw new InvalidArgumentError(`work: option heartbeatFraction must be in (0, 1), got ${fraction}`);
  }
  return {
    concurrency,
    prefetch,
    leaseMs,
    waitMs,
    owner,
    types,
    heartbeatMs: Math.max(1, Math.floor(leaseMs * fraction)),
    timeoutMs,
    signal: options.signal,
  };
}

/**
 * `types` as a lease names them: 1..MAX_LEASE_TYPES distinct task types, or
 * undefined (the default type). INVALID_ARGUMENT naming the option otherwise.
 */
export function checkTypes(
  where: string,
  types: readonly string[] | undefined,
): readonly string[] | undefined {
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.length === 0 || types.length > MAX_LEASE_TYPES) {
    throw new InvalidArgumentError(
      `${where}: option types must list 1..${MAX_LEASE_TYPES} task types, got ${Array.isArray(types) ? `${types.length}` : typeof types}`,
    );
  }
  const seen = new Set<string>();
  for (const type of types) {
    if (!isTaskType(type)) {
      throw new InvalidArgumentError(
        `${where}: option types: ${JSON.stringify(type)} is not a task type (1..${MAX_TASK_TYPE_LENGTH} of letters, digits, "_", "." and "-")`,
      );
    }
    if (seen.has(type))
      throw new InvalidArgumentError(`${where}: option types names ${JSON.stringify(type)} twice`);
    seen.add(type);
  }
  return Object.freeze([...types]);
}

export interface SubmitterOptions {
  /** Most tasks per batch, 1..MAX_TASKS_PER_BATCH. See `DEFAULT_MAX_BATCH`. */
  readonly maxBatch?: number;
  /** How long a batch may wait to fill, ms; 0 sends what is queued at the next tick. See `DEFAULT_LINGER_MS`. */
  readonly lingerMs?: number;
  /** Most tasks held, queued or in flight, before `add()` waits. See `DEFAULT_MAX_PENDING`. */
  readonly maxPending?: number;
}

export interface FilledSubmitterOptions {
  readonly maxBatch: number;
  readonly lingerMs: number;
  readonly maxPending: number;
}

export function fillSubmitterOptions(options: SubmitterOptions): FilledSubmitterOptions {
  const maxBatch = positiveInt("submitter", "maxBatch", options.maxBatch, DEFAULT_MAX_BATCH);
  if (maxBatch > MAX_TASKS_PER_BATCH) {
    throw new InvalidArgumentError(
      `submitter: option maxBatch must be at most MAX_TASKS_PER_BATCH (${MAX_TASKS_PER_BATCH}), got ${maxBatch}`,
    );
  }
  const lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
  nonNegative("submitter", "lingerMs", lingerMs);
  return {
    maxBatch,
    lingerMs,
    maxPending: positiveInt("submitter", "maxPending", options.maxPending, DEFAULT_MAX_PENDING),
  };
}

function positiveInt(where: string, name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new InvalidArgumentError(`${where}: option ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function bool(where: string, name: string, value: boolean | undefined, fallback: boolean): boolean {
  const v = value ?? fallback;
  if (typeof v !== "boolean") {
    throw new InvalidArgumentError(
      `${where}: option ${name} must be true or false, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function nonNegative(where: string, name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) {
    throw new InvalidArgumentError(`${where}: option ${name} must be a number ≥ 0, got ${String(v)}`);
  }
}

export function checkId(where: string, name: string, v: unknown): asserts v is string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(
      `${where}: ${name} must be a string of 1..${MAX_ID_LENGTH} characters, got ${JSON.stringify(v)}`,
    );
  }
}
