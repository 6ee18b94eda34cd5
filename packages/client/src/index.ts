/**
 * @frontier/client — the SDK of Frontier: submit tasks, lease and work them,
 * over NATS request/reply to a cluster's coordinators. This file is the
 * package's whole public face.
 */

export { DEFAULT_TASK_TYPE, type TypeCounts } from "@frontier/core";
export { accessOf, type NatsAccess, type NatsTls, type Principal, type Role } from "@frontier/transport";
export {
  type CancelOptions,
  type ClusterStats,
  type CompleteOptions,
  connect,
  type FailOptions,
  type FrontierClient,
  isLeaseGone,
  type LeaseOptions,
  type LeaseRef,
  type RequestOptions,
  type SubmitOptions,
  type SubmitResult,
  shouldRetry,
  type TaskCallOptions,
  type TaskListPage,
  type TaskListQuery,
} from "./client.js";
export {
  AttemptTimeoutError,
  ClientError,
  ClientErrorCode,
  LeaseLostError,
  NoRespondersError,
  RequestTimeoutError,
  TaskError,
} from "./errors.js";
export {
  type ConnectOptions,
  DEFAULT_CLUSTER,
  DEFAULT_CONCURRENCY,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_FRACTION,
  DEFAULT_LEASE_MS,
  DEFAULT_LINGER_MS,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_PENDING,
  DEFAULT_NATS_URL,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY,
  DEFAULT_WORK_WAIT_MS,
  type RetryPolicy,
  type SubmitterOptions,
  type WorkOptions,
} from "./options.js";
export { BATCH_BYTE_BUDGET, type SubmitAllResult, type SubmitReceipt, type Submitter } from "./submitter.js";
export {
  BUFFERED_START_SHARE,
  type ReleaseReason,
  type TaskContext,
  type TaskHandler,
  type Worker,
  type WorkerEvent,
  type WorkerStats,
} from "./worker.js";
