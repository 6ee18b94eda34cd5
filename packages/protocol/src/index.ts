/**
 * @frontier/protocol — the wire protocol between clients, coordinators and
 * shards: version, subjects, slot hashing, messages, error catalogue, limits
 * and the msgpack codec. This file is the package's whole public face.
 */
export {
  decode,
  decodeFrontier,
  decodeReply,
  decodeRequest,
  encode,
  encodedByteLength,
  encodeFrontier,
  encodeReply,
  encodeRequest,
} from "./codec.js";
export {
  type BoundaryErrorCode,
  fromWireError,
  isRetryable,
  isWireErrorCode,
  ProtocolError,
  toWireError,
  WIRE_ERRORS,
  type WireError,
  WireErrorCode,
  type WireErrorInfo,
} from "./errors.js";
export {
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_ID_LENGTH,
  MAX_LEASES_PER_REQUEST,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PREREQUISITES,
  MAX_PROBLEMS,
  MAX_REASON_LENGTH,
  MAX_TASKS_PER_BATCH,
  MAX_WAIT_MS,
  NATS_DEFAULT_MAX_PAYLOAD,
} from "./limits.js";
export {
  type CancelRequest,
  type CompleteRequest,
  type ErrorReply,
  errorReply,
  type FailRequest,
  type FrontierAnnouncement,
  type GetTaskRequest,
  type HeartbeatRequest,
  isOp,
  type LeaseRequest,
  type Message,
  type MessageKind,
  type OkReply,
  OPS,
  type Op,
  PROTOCOL_VERSION,
  type Reply,
  type Request,
  type RequestOf,
  type ResultMap,
  type ResultOf,
  type StatsRequest,
  type SubmitRequest,
  type UpdateDeadlineRequest,
  unwrapReply,
} from "./messages.js";
export {
  fnv1a32,
  partitionKeyOf,
  partitionKeyOfRef,
  SLOT_COUNT,
  slotOf,
  slotOfTask,
  type TaskRef,
} from "./slots.js";
export {
  type ClusterSubjects,
  COORDINATOR_QUEUE,
  isValidToken,
  MAX_TOKEN_LENGTH,
  type ParsedSubject,
  parseSubject,
  SUBJECT_ROOT,
  subjectsFor,
} from "./subjects.js";
