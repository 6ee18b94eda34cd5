/**
 * Limits enforced at the wire boundary, by `decode` on the receiving side and
 * by `encode` on the sending side (so a caller learns of a violation before
 * the round trip). Each names the error code its violation produces; the
 * README's limits table lists the same, and a test keeps the two in step.
 *
 * Invariant (pinned by a test): one task at every limit at once fits in one
 * message, so a shard can always grant at least one lease per reply.
 */

/** NATS's default `max_payload` (1 MiB); a message above the server's limit is refused by NATS itself. */
export const NATS_DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * Largest encoded message, in bytes (1 MiB − 16 KiB = 1,032,192). Below NATS's
 * default max_payload, leaving room for NATS headers, so a message we accept
 * is never refused by NATS. Violation: MESSAGE_TOO_LARGE.
 */
export const MAX_MESSAGE_BYTES = NATS_DEFAULT_MAX_PAYLOAD - 16 * 1024;

/** Most tasks in one submit (or one prepared part of one). Violation: BATCH_TOO_LARGE. */
export const MAX_TASKS_PER_BATCH = 1_000;

/** Largest `max` of one lease request (and most grants in one lease reply). Violation: BATCH_TOO_LARGE. */
export const MAX_LEASES_PER_REQUEST = 1_000;

/**
 * The ranks a frontier announcement's `depth` gives keys at: `depth[i]` is
 * the ordering key of the `FRONTIER_DEPTH_RANKS[i]`-th earliest runnable
 * task. Every rank to 6, then about 1.3× apart: a coordinator's parallel
 * round (see the coordinator's lease routing) fills at least ~3/4 of its
 * room, however the shards' keys interleave.
 */
export const FRONTIER_DEPTH_RANKS: readonly number[] = Object.freeze([
  1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256,
]);

/**
 * Most task types one lease request (or a settle's next leases) names.
 * Violation: INVALID_ARGUMENT.
 */
export const MAX_LEASE_TYPES = 64;

/**
 * Most task types one frontier announcement describes (`types`): a shard
 * with runnable tasks of more types announces the types whose first tasks
 * come first and counts the rest (`typesOmitted`). Violation: BAD_MESSAGE.
 */
export const MAX_ANNOUNCED_TYPES = 32;

/**
 * Most task types in one stats reply (`stats.types`): the types with the
 * most runnable and leased tasks; the rest are counted in `typesOmitted`.
 * Violation: BAD_MESSAGE.
 */
export const MAX_STATS_TYPES = 256;

/** Most entries of a frontier announcement's `depth` (one per FRONTIER_DEPTH_RANKS rank). Violation: BAD_MESSAGE. */
export const MAX_FRONTIER_DEPTH = FRONTIER_DEPTH_RANKS.length;

/** Most tasks completed by one settle request. Violation: BATCH_TOO_LARGE. */
export const MAX_SETTLES_PER_REQUEST = 1_000;

/**
 * Longest id, in UTF-16 code units (`String.length`), as the engine counts:
 * task ids, prerequisites, workflow ids, owners, idempotency keys, request ids.
 * Violation: ID_TOO_LONG.
 */
export const MAX_ID_LENGTH = 256;

/**
 * Largest task payload, in msgpack-encoded bytes. A scheduler should carry
 * references to data, not the data; 64 KiB also keeps ~15 payload-heavy tasks
 * per lease reply. Violation: PAYLOAD_TOO_LARGE.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * Largest result of a completed task (`result` of a complete, of each of a
 * settle's completes), in msgpack-encoded bytes: a result, like a payload,
 * should be a reference to data or a small summary of it. Violation:
 * PAYLOAD_TOO_LARGE. Nested at most MAX_PAYLOAD_DEPTH deep, as payloads.
 */
export const MAX_RESULT_BYTES = 64 * 1024;

/**
 * Most bytes of prerequisites' results one lease carries (`Lease.results`,
 * each entry counted by the engine's resultEntryBytes, an upper bound of
 * its msgpack size): a shard leaves out those that would pass it and counts
 * them in `resultsOmitted`, so one task at every limit with its results
 * still fits in one lease reply. At least one result at MAX_RESULT_BYTES
 * always fits. Not checked on the wire: a budget the shards keep.
 */
export const LEASE_RESULTS_BYTES = 128 * 1024;

/**
 * Deepest nesting of arrays and maps in a task payload (a scalar is depth 0,
 * `{ a: [1] }` depth 2). Encoders and decoders recurse (msgpackr on both
 * sides, the journal's too): a payload nested thousands deep can be stored
 * and then fail every read of its task. Checked in the shared codec, so a
 * coordinator and a shard refuse the same payloads. Violation: BAD_MESSAGE.
 */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * Latest deadline, in ms since the Unix epoch: the latest time a JS Date
 * holds (+275760-09-13). Deadlines on the wire are ms since the epoch (the
 * shards' clock is the wall clock in ms); one after this, or before
 * −MAX_DEADLINE, is a bug or an attack (a deadline of 1e300 sorts before
 * nothing), not a time. Checked on what a client sends (a submit's or
 * prepare's tasks, updateDeadline), not on what a shard sends back, so a
 * task stored before this check can still be read. Violation: INVALID_ARGUMENT.
 */
export const MAX_DEADLINE = 8.64e15;

/**
 * Deadlines strictly between `above` and `below` look like seconds since the
 * epoch: read as ms they fall between 1970-01-12 and 1973-03-03, which no
 * real deadline does, and read as seconds between 2001 and 5138. Refused,
 * saying so: INVALID_ARGUMENT. Small deadlines (0, 1, 1000, …: an ordering
 * number, as tests and the bare engine use) stay valid.
 */
export const SECONDS_LIKE_DEADLINES = Object.freeze({ above: 1e9, below: 1e11 });

/** Most prerequisites of one task. Violation: TOO_MANY_PREREQUISITES. */
export const MAX_PREREQUISITES = 1_000;

/**
 * Longest lease long-poll, in ms. A client's NATS request timeout must exceed
 * the `waitMs` it asks for, so this bounds how long requests stay open.
 * Violation: INVALID_ARGUMENT.
 */
export const MAX_WAIT_MS = 30_000;

/**
 * Longest lease (`leaseMs` of lease, heartbeat and a settle's lease): one
 * day. A longer task heartbeats; a lease without a bound would outlive its
 * worker's crash for good. Violation: INVALID_ARGUMENT.
 */
export const MAX_LEASE_MS = 24 * 60 * 60 * 1000;

/**
 * Longest run time limit of a task's attempt (`timeoutMs` of a submit's or
 * prepare's task): one week. Longer than MAX_LEASE_MS, as heartbeats carry
 * a long attempt from lease to lease; a bound all the same, so a typo of
 * units (seconds read as ms the other way round) is refused, not kept for
 * years. Violation: INVALID_ARGUMENT.
 */
export const MAX_TIMEOUT_MS = 7 * 24 * 60 * 60 * 1000;

/** Highest send number (`attempt`) of one lease request: a 31-bit integer. Violation: INVALID_ARGUMENT. */
export const MAX_ATTEMPT = 2_147_483_647;

/**
 * Characters of a lease secret (`Lease.secret`): 128 bits in base64url. A
 * secret of another length or alphabet is refused: BAD_MESSAGE.
 */
export const LEASE_SECRET_LENGTH = 22;

/** Longest failure / cancellation reason, in UTF-16 code units. Violation: INVALID_ARGUMENT. */
export const MAX_REASON_LENGTH = 1_024;

/**
 * Longest error message in an error reply, in UTF-16 code units. `toWireError`
 * truncates longer ones (the reply must not fail for being about a failure);
 * `decode` rejects longer ones as BAD_MESSAGE.
 */
export const MAX_ERROR_MESSAGE_LENGTH = 4_096;

/**
 * Most problems in one error reply; `toWireError` keeps the first ones (the
 * message still counts them all). Each problem's taskId is clipped to
 * MAX_ID_LENGTH and its message to MAX_REASON_LENGTH, so even an all
 * multi-byte reply stays under MAX_MESSAGE_BYTES. Violation: BAD_MESSAGE.
 */
export const MAX_PROBLEMS = 200;

/**
 * Most workflows an AMBIGUOUS_TASK error lists (the message counts them
 * all). Violation: BAD_MESSAGE.
 */
export const MAX_AMBIGUOUS_WORKFLOWS = 16;

/**
 * Most shards one stats reply names, answered and missing together. As many
 * as there are slots (SLOT_COUNT): a cluster of more shards would leave some
 * owning none. With each id at MAX_ID_LENGTH a reply naming this many still
 * fits in MAX_MESSAGE_BYTES (a test pins it). Violation: BAD_MESSAGE.
 */
export const MAX_SHARDS = 1_024;

/**
 * Most tasks one `listTasks` or `getWorkflow` page asks for (`limit`) and
 * one reply holds. Violation: INVALID_ARGUMENT (request), BAD_MESSAGE (reply).
 */
export const MAX_LIST_LIMIT = 1_000;

/**
 * Encoded bytes of the tasks a page holds at most, whatever its `limit`: a
 * shard, then a coordinator merging pages, stops before the task that would
 * pass it (the first task always goes in: one task at every limit, its
 * prerequisites included, fits in MAX_MESSAGE_BYTES), and the page's `next`
 * resumes there. Half a message leaves room for the envelope and the
 * shards' coverage. Not checked on the wire: a budget the senders keep.
 */
export const LIST_PAGE_BYTES = MAX_MESSAGE_BYTES >> 1;

/**
 * How long a shard holds a prepared part of a multi-shard submit (and the ids
 * it reserves) waiting for its `commit` or `abort`, in ms; after that the
 * shard drops the part as an `abort` would, so a coordinator that died
 * between the phases does not keep ids reserved forever. Not checked on the
 * wire: a shard-side timer.
 */
export const PREPARE_TTL_MS = 30_000;

/**
 * What one `adopt` part of a slot's export carries at most, encoded: a
 * source splits a slot's tasks into parts of about this size (a task is at
 * most MAX_PAYLOAD_BYTES of payload and MAX_RESULT_BYTES of result, so a
 * part with one task always fits a message).
 */
export const MOVE_PART_BYTES = MAX_MESSAGE_BYTES >> 1;
/**
 * Most remote links (a large workflow's cross-partition edges, RemoteLink)
 * in one submit, prepare or check part: a batch with more is refused
 * (BATCH_TOO_LARGE) before anything is prepared. ~60 bytes each encoded,
 * so a part's links stay well inside MAX_MESSAGE_BYTES.
 */
export const MAX_LINKS_PER_PART = 10_000;

/** Most completion events in one `deliverEvents` request (a relay sends more in several). */
export const MAX_EVENTS_PER_DELIVERY = 1_000;

/** Most tasks (and entries, and leases) in one `adopt` part. */
export const MAX_MOVE_PART_TASKS = 10_000;
/** Most parts of one slot's export (MOVE_PART_BYTES each: ~50 GB). */
export const MAX_MOVE_PARTS = 100_000;
