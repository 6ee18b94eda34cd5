/**
 * @frontier/core — the pure scheduling engine. No I/O; time is injected.
 * This file is the package's whole public face.
 */
export { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export {
  ErrorCode,
  FrontierError,
  InvalidArgumentError,
  InvalidStateError,
  type Problem,
  ProblemCode,
  StaleLeaseError,
  UnknownTaskError,
  ValidationError,
} from "./errors.js";
export { IndexedHeap } from "./indexed-heap.js";
export type { SchedulerObserver, TaskEvent } from "./observer.js";
export {
  type AdmitOptions,
  type BatchFootprint,
  type CompleteOptions,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_ATTEMPTS,
  type LeaseOptions,
  type LeaseResults,
  MAX_LEASE_BATCH,
  MAX_LEASE_TYPES,
  pastBound,
  resultEntryBytes,
  Scheduler,
  type SchedulerOptions,
  type TypeFrontier,
} from "./scheduler.js";
export type { TaskCursor, TaskPage, TaskQuery, TaskSummary } from "./task-query.js";
export { MAX_TASK_TYPES_HELD } from "./task-types.js";
export * from "./types.js";
export {
  type BatchCheckOptions,
  type BatchCheckResult,
  checkBatch,
  type GraphView,
  MAX_ATTEMPTS_LIMIT,
  MAX_ID_LENGTH,
  MAX_MEASURED_PAYLOAD_BYTES,
  MAX_TIMEOUT_MS_LIMIT,
  type ParsedTask,
  type PayloadMeasure,
  parseTask,
  TASK_INPUT_FIELDS,
} from "./validate.js";
