/**
 * Shape checks for every message body, used by `decode` on what arrives and
 * by `encode` on what leaves. Each parser checks and rebuilds in one pass:
 * the result holds only known fields (an unknown field is an error: a typo
 * such as `maxAtempts` must not be silently ignored), with `undefined`
 * optionals dropped, so nothing the sender slipped in travels further.
 *
 * What is checked here: types (integers where a count, token or duration is
 * meant), membership of enumerations, and the limits of limits.ts. What is
 * not: the meaning of task definitions (empty ids, duplicates, cycles,
 * attempts in range), which the engine reports per task in one
 * ValidationError. Task payloads are opaque; their size is checked by the
 * codec, which can measure encoded bytes.
 *
 * Errors: BAD_MESSAGE for a wrong shape, the limit's own code for a limit,
 * INVALID_ARGUMENT (the engine's class) for a request argument out of range.
 * Messages name the field by path, e.g. `tasks[3].deadline`.
 */
import {
  InvalidArgumentError,
  isTaskType,
  type Lease,
  MAX_TASK_TYPE_LENGTH,
  type PrerequisiteFailurePolicy,
  type Problem,
  ProblemCode,
  type SchedulerStats,
  TASK_INPUT_FIELDS,
  type Task,
  type TaskInput,
  type TaskRecord,
  TaskState,
  type TaskSummary,
  type TaskView,
  type TypeCounts,
} from "@frontier/core";
import {
  clip,
  isShardUnavailableDetail,
  isWireErrorCode,
  ProtocolError,
  SHARD_UNAVAILABLE_DETAILS,
  type WireError,
  WireErrorCode,
} from "./errors.js";
import {
  LEASE_SECRET_LENGTH,
  MAX_AMBIGUOUS_WORKFLOWS,
  MAX_ANNOUNCED_TYPES,
  MAX_ATTEMPT,
  MAX_DEADLINE,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_FRONTIER_DEPTH,
  MAX_ID_LENGTH,
  MAX_LEASE_MS,
  MAX_LEASE_TYPES,
  MAX_LEASES_PER_REQUEST,
  MAX_LIST_LIMIT,
  MAX_MOVE_PART_TASKS,
  MAX_MOVE_PARTS,
  MAX_PAYLOAD_DEPTH,
  MAX_PREREQUISITES,
  MAX_PROBLEMS,
  MAX_REASON_LENGTH,
  MAX_SETTLES_PER_REQUEST,
  MAX_SHARDS,
  MAX_STATS_TYPES,
  MAX_TASKS_PER_BATCH,
  MAX_TIMEOUT_MS,
  MAX_WAIT_MS,
  SECONDS_LIKE_DEADLINES,
} from "./limits.js";
import {
  type FrontierAnnouncement,
  isOp,
  type ListCursor,
  type MovedEntry,
  OPS,
  type Reply,
  type Request,
  type SettleLease,
  type SettleOutcome,
  type ShardCoverage,
  type ShardStatsEntry,
  type TypeFrontierAnnouncement,
} from "./messages.js";
import { SLOT_COUNT } from "./slots.js";
import { isValidToken } from "./subjects.js";

type Fields = Record<string, unknown>;
/** A mutable object under construction; parsers return it as the readonly message type. */
type Draft = Record<string, unknown>;

// ------------------------------------------------------------ primitives

function at(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** A value as an error message names it: its type, and its value when short. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "binary";
  if (v instanceof Date) return "a timestamp";
  switch (typeof v) {
    case "string":
      return `string ${JSON.stringify(clip(v, 40))}`;
    case "number":
    case "bigint":
    case "boolean":
      return `${typeof v} ${String(v)}`;
    case "object":
      return isPlainMap(v) ? "a map" : `an object (${v.constructor?.name ?? "no constructor"})`;
    default:
      return typeof v;
  }
}

function bad(path: string, expected: string, got: unknown): never {
  const where = path === "" ? "message" : path;
  const what = got === undefined ? "missing" : `got ${describe(got)}`;
  throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `${where}: expected ${expected}, ${what}`);
}

/** What msgpack maps decode to: an object whose prototype is Object.prototype (or null). */
export function isPlainMap(v: unknown): v is Fields {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A map with no field outside `keys`. */
function map(v: unknown, path: string, keys: readonly string[]): Fields {
  if (!isPlainMap(v)) bad(path, "a map", v);
  for (const key of Object.keys(v)) {
    if (!keys.includes(key)) {
      const where = path === "" ? "message" : path;
      throw new ProtocolError(
        WireErrorCode.BAD_MESSAGE,
        `${where}: unknown field ${JSON.stringify(clip(key, 40))} (expected only ${keys.join(", ")})`,
      );
    }
  }
  return v;
}

function str(v: unknown, path: string): string {
  return typeof v === "string" ? v : bad(path, "a string", v);
}

/** With the `u` flag only an unpaired surrogate falls in this range. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * A string of at most MAX_ID_LENGTH, well-formed Unicode; `nonEmpty` for ids
 * the protocol itself relies on. Strings travel as UTF-8, where a lone
 * surrogate turns into U+FFFD: the receiver would know the task by another id.
 */
function id(v: unknown, path: string, nonEmpty = false): string {
  const s = str(v, path);
  if (nonEmpty && s.length === 0) bad(path, "a non-empty string", s);
  if (LONE_SURROGATE.test(s)) bad(path, "well-formed Unicode (no lone surrogate)", s);
  if (s.length > MAX_ID_LENGTH) {
    throw new ProtocolError(
      WireErrorCode.ID_TOO_LONG,
      `${path}: ${s.length} characters exceed MAX_ID_LENGTH (${MAX_ID_LENGTH})`,
    );
  }
  return s;
}

/** A string of at most `max`, else BAD_MESSAGE (for text the other side produced). */
function text(v: unknown, path: string, max: number): string {
  const s = str(v, path);
  if (s.length > max) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `${path}: ${s.length} characters exceed the limit of ${max}`,
    );
  }
  return s;
}

/** A reason the client wrote: too long is an argument out of range. */
function reason(v: unknown, path: string): string {
  const s = str(v, path);
  if (s.length > MAX_REASON_LENGTH) {
    throw new InvalidArgumentError(
      `${path}: ${s.length} characters exceed MAX_REASON_LENGTH (${MAX_REASON_LENGTH})`,
    );
  }
  return s;
}

function num(v: unknown, path: string): number {
  return typeof v === "number" ? v : bad(path, "a number", v);
}

/** A safe integer ≥ `min`: counts, tokens, durations. */
function int(v: unknown, path: string, min: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    bad(path, min === 0 ? "a non-negative integer" : `an integer ≥ ${min}`, v);
  }
  return v;
}

function bool(v: unknown, path: string): boolean {
  return typeof v === "boolean" ? v : bad(path, "a boolean", v);
}

function oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
  return bad(path, `one of ${values.join(", ")}`, v);
}

function list(v: unknown, path: string): readonly unknown[] {
  return Array.isArray(v) ? v : bad(path, "an array", v);
}

/** A list of at most `max` items, else `code` (a limit). */
function bounded(
  v: unknown,
  path: string,
  max: number,
  code: "BATCH_TOO_LARGE" | "TOO_MANY_PREREQUISITES" | "BAD_MESSAGE",
  limitName: string,
): readonly unknown[] {
  const items = list(v, path);
  if (items.length > max) {
    throw new ProtocolError(code, `${path}: ${items.length} items exceed ${limitName} (${max})`);
  }
  return items;
}

/** Set `key` unless `value` is undefined (optional fields stay absent, never `undefined`). */
function put(draft: Draft, key: string, value: unknown): void {
  if (value !== undefined) draft[key] = value;
}

function optional<T>(v: unknown, path: string, parse: (v: unknown, path: string) => T): T | undefined {
  return v === undefined ? undefined : parse(v, path);
}

const TASK_STATES = Object.values(TaskState);
const PROBLEM_CODES = Object.values(ProblemCode);
const FAILURE_POLICIES: readonly PrerequisiteFailurePolicy[] = ["cancel", "continue"];

// ------------------------------------------------------------------ tasks

function prerequisites(v: unknown, path: string): string[] {
  return bounded(v, path, MAX_PREREQUISITES, "TOO_MANY_PREREQUISITES", "MAX_PREREQUISITES").map((p, i) =>
    id(p, at(path, i)),
  );
}

/** A task definition: types and limits only; its meaning is the engine's to check. */
export function parseTaskInput(v: unknown, path: string): TaskInput {
  const f = map(v, path, TASK_INPUT_FIELDS);
  const taskId = id(f["id"], at(path, "id"));
  const t: Draft = { id: taskId, deadline: deadline(f["deadline"], at(path, "deadline"), taskId) };
  put(t, "prerequisites", optional(f["prerequisites"], at(path, "prerequisites"), prerequisites));
  put(
    t,
    "workflowId",
    optional(f["workflowId"], at(path, "workflowId"), (w, p) => id(w, p)),
  );
  put(t, "payload", payload(f["payload"], at(path, "payload")));
  // Its meaning (TASK_TYPE_PATTERN) is the engine's to check, so a bad type is one MALFORMED problem among the batch's.
  put(
    t,
    "type",
    optional(f["type"], at(path, "type"), (x, p) => text(x, p, MAX_ID_LENGTH)),
  );
  put(t, "maxAttempts", optional(f["maxAttempts"], at(path, "maxAttempts"), num));
  put(t, "hardDeadline", optional(f["hardDeadline"], at(path, "hardDeadline"), bool));
  put(
    t,
    "onPrerequisiteFailure",
    optional(f["onPrerequisiteFailure"], at(path, "onPrerequisiteFailure"), (x, p) =>
      oneOf(x, p, FAILURE_POLICIES),
    ),
  );
  // A time like a deadline: the same range and the same seconds check.
  put(
    t,
    "notBefore",
    optional(f["notBefore"], at(path, "notBefore"), (x, p) => deadline(x, p, taskId, "notBefore")),
  );
  put(
    t,
    "timeoutMs",
    optional(f["timeoutMs"], at(path, "timeoutMs"), (x, p) =>
      argumentUpTo(x, p, 1, MAX_TIMEOUT_MS, "MAX_TIMEOUT_MS"),
    ),
  );
  return t as unknown as TaskInput;
}

/** A task type the other side produced: TASK_TYPE_PATTERN, else BAD_MESSAGE. */
function taskType(v: unknown, path: string): string {
  const s = str(v, path);
  if (!isTaskType(s)) bad(path, `a task type (1..${MAX_TASK_TYPE_LENGTH} of [A-Za-z0-9_.-])`, s);
  return s;
}

/**
 * The types a lease names: 1..MAX_LEASE_TYPES distinct task types. A bad
 * list is an argument out of range (INVALID_ARGUMENT), naming the culprit.
 */
function leaseTypes(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) bad(path, "a list of task types", v);
  const items = v as unknown[];
  if (items.length === 0 || items.length > MAX_LEASE_TYPES)
    throw new InvalidArgumentError(
      `${path}: 1..${MAX_LEASE_TYPES} task types (MAX_LEASE_TYPES), got ${items.length}`,
    );
  const seen = new Set<string>();
  return items.map((item, i) => {
    if (!isTaskType(item))
      throw new InvalidArgumentError(
        `${at(path, i)}: ${describe(item)} is not a task type (1..${MAX_TASK_TYPE_LENGTH} of letters, digits, "_", "." and "-")`,
      );
    if (seen.has(item))
      throw new InvalidArgumentError(`${at(path, i)}: ${JSON.stringify(item)} is named twice`);
    seen.add(item);
    return item;
  });
}

function parseTask(v: unknown, path: string): Task {
  const f = map(v, path, ["id", "deadline", "prerequisites", "workflowId", "payload", "type", "timeoutMs"]);
  const t: Draft = {
    id: id(f["id"], at(path, "id")),
    deadline: num(f["deadline"], at(path, "deadline")),
    prerequisites: prerequisites(f["prerequisites"], at(path, "prerequisites")),
  };
  put(
    t,
    "workflowId",
    optional(f["workflowId"], at(path, "workflowId"), (w, p) => id(w, p)),
  );
  put(t, "payload", payload(f["payload"], at(path, "payload")));
  put(t, "type", optional(f["type"], at(path, "type"), taskType));
  put(
    t,
    "timeoutMs",
    optional(f["timeoutMs"], at(path, "timeoutMs"), (x, p) => int(x, p, 1)),
  );
  return t as unknown as Task;
}

function parseLease(v: unknown, path: string): Lease {
  const f = map(v, path, [
    "taskId",
    "owner",
    "token",
    "secret",
    "expiresAt",
    "attempt",
    "task",
    "results",
    "resultsOmitted",
  ]);
  const lease: Draft = {
    taskId: id(f["taskId"], at(path, "taskId")),
    owner: id(f["owner"], at(path, "owner")),
    token: int(f["token"], at(path, "token"), 0),
  };
  put(lease, "secret", optional(f["secret"], at(path, "secret"), leaseSecret));
  lease["expiresAt"] = num(f["expiresAt"], at(path, "expiresAt"));
  lease["attempt"] = int(f["attempt"], at(path, "attempt"), 1);
  lease["task"] = parseTask(f["task"], at(path, "task"));
  put(lease, "results", optional(f["results"], at(path, "results"), prerequisiteResults));
  put(
    lease,
    "resultsOmitted",
    optional(f["resultsOmitted"], at(path, "resultsOmitted"), (x, p) => int(x, p, 1)),
  );
  return lease as unknown as Lease;
}

/** A lease's prerequisites' results: at most one per prerequisite, each `{ taskId, result }`. */
function prerequisiteResults(v: unknown, path: string): { taskId: string; result: unknown }[] {
  const items = bounded(v, path, MAX_PREREQUISITES, "BAD_MESSAGE", "MAX_PREREQUISITES");
  return items.map((item, i) => {
    const itemPath = at(path, i);
    const f = map(item, itemPath, ["taskId", "result"]);
    if (f["result"] === undefined) bad(at(itemPath, "result"), "a value", undefined);
    return {
      taskId: id(f["taskId"], at(itemPath, "taskId")),
      result: payload(f["result"], at(itemPath, "result")),
    };
  });
}

const TASK_VIEW_KEYS = [
  "id",
  "prerequisites",
  "workflowId",
  "payload",
  "type",
  "maxAttempts",
  "hardDeadline",
  "onPrerequisiteFailure",
  "notBefore",
  "timeoutMs",
  "state",
  "deadline",
  "attempts",
  "token",
  "leaseOwner",
  "leaseExpiresAt",
  "timeoutAt",
  "retryAt",
  "runnableSince",
  "finishedAt",
  "reason",
  "result",
  "released",
  "unmetPrerequisites",
];

function parseTaskView(v: unknown, path: string): TaskView {
  const f = map(v, path, TASK_VIEW_KEYS);
  const field = (k: string) => [f[k], at(path, k)] as const;
  const t: Draft = {
    id: id(...field("id")),
    prerequisites: prerequisites(...field("prerequisites")),
  };
  put(
    t,
    "workflowId",
    optional(...field("workflowId"), (w, p) => id(w, p)),
  );
  put(t, "payload", payload(f["payload"], at(path, "payload")));
  put(t, "type", optional(...field("type"), taskType));
  t["maxAttempts"] = int(...field("maxAttempts"), 1);
  t["hardDeadline"] = bool(...field("hardDeadline"));
  t["onPrerequisiteFailure"] = oneOf(...field("onPrerequisiteFailure"), FAILURE_POLICIES);
  put(t, "notBefore", optional(...field("notBefore"), num));
  put(
    t,
    "timeoutMs",
    optional(...field("timeoutMs"), (x, p) => int(x, p, 1)),
  );
  t["state"] = oneOf(...field("state"), TASK_STATES);
  t["deadline"] = num(...field("deadline"));
  t["attempts"] = int(...field("attempts"), 0);
  t["token"] = int(...field("token"), 0);
  put(
    t,
    "leaseOwner",
    optional(...field("leaseOwner"), (o, p) => id(o, p)),
  );
  for (const k of ["leaseExpiresAt", "timeoutAt", "retryAt", "runnableSince", "finishedAt"]) {
    put(t, k, optional(...field(k), num));
  }
  put(t, "reason", optional(...field("reason"), str));
  put(t, "result", payload(f["result"], at(path, "result")));
  put(t, "released", optional(...field("released"), releasedMark));
  t["unmetPrerequisites"] = int(...field("unmetPrerequisites"), 0);
  return t as unknown as TaskView;
}

/** TaskView.released: present only as `true`. */
function releasedMark(v: unknown, path: string): true {
  if (v !== true) bad(path, "true", v);
  return true;
}

/**
 * The keys of a TaskRecord's spec: a task's input fields but its deadline,
 * which is status (it can change); the rest of a TaskView, but
 * unmetPrerequisites, is its status.
 */
const SPEC_KEYS: ReadonlySet<string> = new Set(TASK_INPUT_FIELDS.filter((k) => k !== "deadline"));

/** A task as a journal holds it (`{ spec, status }`), checked as a TaskView's fields are. */
function parseTaskRecord(v: unknown, path: string): TaskRecord {
  const f = map(v, path, ["spec", "status"]);
  const spec = map(f["spec"], at(path, "spec"), [...SPEC_KEYS]);
  const status = map(
    f["status"],
    at(path, "status"),
    TASK_VIEW_KEYS.filter((k) => !SPEC_KEYS.has(k) && k !== "unmetPrerequisites"),
  );
  const view = parseTaskView({ ...spec, ...status, unmetPrerequisites: 0 }, path);
  const out: { spec: Draft; status: Draft } = { spec: {}, status: {} };
  for (const [k, value] of Object.entries(view)) {
    if (k === "unmetPrerequisites") continue;
    out[SPEC_KEYS.has(k) ? "spec" : "status"][k] = value;
  }
  return out as unknown as TaskRecord;
}

function parseMovedEntry(v: unknown, path: string): MovedEntry {
  const f = map(v, path, ["key", "taskIds", "createdAt", "tokens", "fence"]);
  const e: Draft = {
    key: id(f["key"], at(path, "key"), true),
    taskIds: prerequisites(f["taskIds"], at(path, "taskIds")),
    createdAt: num(f["createdAt"], at(path, "createdAt")),
  };
  put(
    e,
    "tokens",
    optional(f["tokens"], at(path, "tokens"), (t, p) => list(t, p).map((x, i) => int(x, at(p, i), 0))),
  );
  put(e, "fence", optional(f["fence"], at(path, "fence"), attemptNumber));
  return e as unknown as MovedEntry;
}

function slotNumber(v: unknown, path: string): number {
  const slot = int(v, path, 0);
  if (slot >= SLOT_COUNT) bad(path, `a slot below ${SLOT_COUNT}`, v);
  return slot;
}

const STATS_KEYS = [
  "counts",
  "runnable",
  "oldestRunnableAgeMs",
  "frontierDeadline",
  "leaseTimeouts",
  "attemptTimeouts",
  "deadlineMisses",
  "staleRejections",
  "retries",
  "leased",
  "types",
  "typesOmitted",
];

/** Per-type counts of a stats reply: at most MAX_STATS_TYPES, each type once. */
function typeCounts(v: unknown, path: string): TypeCounts[] {
  const seen = new Set<string>();
  return bounded(v, path, MAX_STATS_TYPES, "BAD_MESSAGE", "MAX_STATS_TYPES").map((item, i) => {
    const itemPath = at(path, i);
    const f = map(item, itemPath, ["type", "runnable", "leased"]);
    const type = taskType(f["type"], at(itemPath, "type"));
    if (seen.has(type)) bad(at(itemPath, "type"), "each type once", type);
    seen.add(type);
    return {
      type,
      runnable: int(f["runnable"], at(itemPath, "runnable"), 0),
      leased: int(f["leased"], at(itemPath, "leased"), 0),
    };
  });
}

/** Stats without per-type counts: a shard's entry in a coordinator's `byShard`. */
const STATS_KEYS_WITHOUT_TYPES = STATS_KEYS.filter((k) => k !== "types" && k !== "typesOmitted");

function parseStats(v: unknown, path: string, perType = true): SchedulerStats {
  const f = map(v, path, perType ? STATS_KEYS : STATS_KEYS_WITHOUT_TYPES);
  const countsPath = at(path, "counts");
  const rawCounts = map(f["counts"], countsPath, TASK_STATES);
  const counts: Draft = {};
  for (const s of TASK_STATES) counts[s] = int(rawCounts[s], at(countsPath, s), 0);
  const frontierDeadline = f["frontierDeadline"];
  const types = optional(f["types"], at(path, "types"), typeCounts);
  const typesOmitted = optional(f["typesOmitted"], at(path, "typesOmitted"), (x, p) => int(x, p, 1));
  return {
    counts: counts as Record<TaskState, number>,
    runnable: int(f["runnable"], at(path, "runnable"), 0),
    oldestRunnableAgeMs: num(f["oldestRunnableAgeMs"], at(path, "oldestRunnableAgeMs")),
    frontierDeadline: frontierDeadline === null ? null : num(frontierDeadline, at(path, "frontierDeadline")),
    leaseTimeouts: int(f["leaseTimeouts"], at(path, "leaseTimeouts"), 0),
    attemptTimeouts: int(f["attemptTimeouts"], at(path, "attemptTimeouts"), 0),
    deadlineMisses: int(f["deadlineMisses"], at(path, "deadlineMisses"), 0),
    staleRejections: int(f["staleRejections"], at(path, "staleRejections"), 0),
    retries: int(f["retries"], at(path, "retries"), 0),
    leased: int(f["leased"], at(path, "leased"), 0),
    ...(types === undefined ? {} : { types }),
    ...(typesOmitted === undefined ? {} : { typesOmitted }),
  };
}

/** Each answering shard's own stats in a coordinator's reply: at most MAX_SHARDS, slots within SLOT_COUNT. */
function parseByShard(v: unknown, path: string): ShardStatsEntry[] {
  return bounded(v, path, MAX_SHARDS, "BAD_MESSAGE", "MAX_SHARDS").map((e, i) => {
    const itemPath = at(path, i);
    const item = map(e, itemPath, ["shardId", "slots", "stats"]);
    const slots = int(item["slots"], at(itemPath, "slots"), 0);
    if (slots > SLOT_COUNT) bad(at(itemPath, "slots"), `at most SLOT_COUNT (${SLOT_COUNT})`, slots);
    return {
      shardId: shardToken(item["shardId"], at(itemPath, "shardId")),
      slots,
      stats: parseStats(item["stats"], at(itemPath, "stats"), false),
    };
  });
}

/** Which shards a coordinator's stats cover: shard ids, and failures by wire error code. */
function parseShardCoverage(v: unknown, path: string): ShardCoverage {
  const f = map(v, path, ["answered", "missing"]);
  const answeredPath = at(path, "answered");
  const missingPath = at(path, "missing");
  const answered = bounded(f["answered"], answeredPath, MAX_SHARDS, "BAD_MESSAGE", "MAX_SHARDS");
  const missing = bounded(f["missing"], missingPath, MAX_SHARDS, "BAD_MESSAGE", "MAX_SHARDS");
  if (answered.length + missing.length > MAX_SHARDS) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `${path}: ${answered.length + missing.length} shards exceed MAX_SHARDS (${MAX_SHARDS})`,
    );
  }
  return {
    answered: answered.map((s, i) => id(s, at(answeredPath, i), true)),
    missing: missing.map((m, i) => {
      const itemPath = at(missingPath, i);
      const item = map(m, itemPath, ["shardId", "code", "detail"]);
      const code = item["code"];
      if (!isWireErrorCode(code)) bad(at(itemPath, "code"), "a code of the wire error catalogue", code);
      const entry: Draft = { shardId: id(item["shardId"], at(itemPath, "shardId"), true), code };
      put(
        entry,
        "detail",
        optional(item["detail"], at(itemPath, "detail"), (x, p) => {
          if (code !== "SHARD_UNAVAILABLE") bad(p, "absent: only SHARD_UNAVAILABLE carries a detail", x);
          if (!isShardUnavailableDetail(x)) bad(p, `one of ${SHARD_UNAVAILABLE_DETAILS.join(", ")}`, x);
          return x;
        }),
      );
      return entry as unknown as ShardCoverage["missing"][number];
    }),
  };
}

// ---------------------------------------------------------------- queries

/** A page's cursor: the (deadline, id, shardId) of the last task it held. */
function parseListCursor(v: unknown, path: string): ListCursor {
  const f = map(v, path, ["deadline", "id", "shardId"]);
  const deadline = num(f["deadline"], at(path, "deadline"));
  if (!Number.isFinite(deadline)) bad(at(path, "deadline"), "a finite number", deadline);
  return {
    deadline,
    id: id(f["id"], at(path, "id"), true),
    shardId: shardToken(f["shardId"], at(path, "shardId")),
  };
}

/** A listing's states: 1..7 distinct task states. */
function stateFilter(v: unknown, path: string): TaskState[] {
  const items = list(v, path);
  if (items.length === 0) throw new InvalidArgumentError(`${path}: name at least one state, or leave it out`);
  const states = items.map((s, i) => oneOf(s, at(path, i), TASK_STATES));
  if (new Set(states).size !== states.length)
    throw new InvalidArgumentError(`${path}: a state appears twice`);
  return states;
}

/** A deadline range's bound: a finite number within ±MAX_DEADLINE. */
function deadlineBound(v: unknown, path: string): number {
  const d = num(v, path);
  if (!Number.isFinite(d) || d > MAX_DEADLINE || d < -MAX_DEADLINE)
    throw new InvalidArgumentError(`${path}: ${d} is not a deadline (finite, within ±MAX_DEADLINE)`);
  return d;
}

function parseSummary(v: unknown, path: string): TaskSummary {
  const f = map(v, path, [
    "id",
    "workflowId",
    "type",
    "state",
    "deadline",
    "attempts",
    "maxAttempts",
    "reason",
    "finishedAt",
    "prerequisites",
  ]);
  const field = (k: string) => [f[k], at(path, k)] as const;
  const t: Draft = { id: id(...field("id")) };
  put(
    t,
    "workflowId",
    optional(...field("workflowId"), (w, p) => id(w, p)),
  );
  put(t, "type", optional(...field("type"), taskType));
  t["state"] = oneOf(...field("state"), TASK_STATES);
  t["deadline"] = num(...field("deadline"));
  t["attempts"] = int(...field("attempts"), 0);
  t["maxAttempts"] = int(...field("maxAttempts"), 1);
  put(t, "reason", optional(...field("reason"), str));
  put(t, "finishedAt", optional(...field("finishedAt"), num));
  put(t, "prerequisites", optional(...field("prerequisites"), prerequisites));
  return t as unknown as TaskSummary;
}

function parseSummaries(v: unknown, path: string): TaskSummary[] {
  return bounded(v, path, MAX_LIST_LIMIT, "BAD_MESSAGE", "MAX_LIST_LIMIT").map((t, i) =>
    parseSummary(t, at(path, i)),
  );
}

// --------------------------------------------------------------- requests

/** Fields of a request naming one task (see TaskRef). */
function taskRef(f: Fields, draft: Draft, path = ""): void {
  draft["taskId"] = id(f["taskId"], at(path, "taskId"));
  put(
    draft,
    "workflowId",
    optional(f["workflowId"], at(path, "workflowId"), (w, p) => id(w, p)),
  );
}

/**
 * A task payload: opaque, but nested at most MAX_PAYLOAD_DEPTH deep (arrays
 * and maps). Walked without recursion, so a payload too deep to walk by
 * recursion is refused too.
 */
function payload(v: unknown, path: string): unknown {
  if (v === null || typeof v !== "object") return v;
  const stack: [value: object, depth: number][] = [[v, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > MAX_PAYLOAD_DEPTH) {
      throw new ProtocolError(
        WireErrorCode.BAD_MESSAGE,
        `${path}: nested deeper than MAX_PAYLOAD_DEPTH (${MAX_PAYLOAD_DEPTH})`,
      );
    }
    const children = Array.isArray(value) ? value : value instanceof Uint8Array ? [] : Object.values(value);
    for (const child of children)
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return v;
}

/**
 * A deadline (or a task's notBefore, `what`) a client sends for task
 * `taskId`: within ±MAX_DEADLINE, and not one that looks like seconds
 * (SECONDS_LIKE_DEADLINES); else INVALID_ARGUMENT naming the task. NaN and
 * ±Infinity pass: the engine refuses them as MALFORMED, with the batch's
 * other problems.
 */
function deadline(v: unknown, path: string, taskId: string, what = "deadline"): number {
  const d = num(v, path);
  if (!Number.isFinite(d)) return d;
  const task = `task ${JSON.stringify(clip(taskId, 80))}`;
  const unit = what === "deadline" ? "deadlines are milliseconds" : `${what} is in milliseconds`;
  if (d > MAX_DEADLINE || d < -MAX_DEADLINE) {
    throw new InvalidArgumentError(
      `${path}: ${task}: ${what} ${d} is outside ±MAX_DEADLINE (${MAX_DEADLINE}); ${unit} since the epoch`,
    );
  }
  if (d > SECONDS_LIKE_DEADLINES.above && d < SECONDS_LIKE_DEADLINES.below) {
    throw new InvalidArgumentError(
      `${path}: ${task}: ${what} ${d} looks like seconds since the epoch (${new Date(d * 1000).toISOString()}); ${unit}`,
    );
  }
  return d;
}

/**
 * A request argument: an integer from `min` up to the limit `name` (its
 * value `limit`); beyond it INVALID_ARGUMENT, the engine's class, naming the
 * limit.
 */
function argumentUpTo(v: unknown, path: string, min: number, limit: number, name: string): number {
  const n = int(v, path, min);
  if (n > limit) throw new InvalidArgumentError(`${path}: ${n} exceeds ${name} (${limit})`);
  return n;
}

/** A lease duration, ms: 1..MAX_LEASE_MS. */
function leaseDuration(v: unknown, path: string): number {
  return argumentUpTo(v, path, 1, MAX_LEASE_MS, "MAX_LEASE_MS");
}

/** A lease secret: LEASE_SECRET_LENGTH base64url characters. */
function leaseSecret(v: unknown, path: string): string {
  const s = str(v, path);
  if (!LEASE_SECRET.test(s)) bad(path, `a lease secret (${LEASE_SECRET_LENGTH} base64url characters)`, s);
  return s;
}

const LEASE_SECRET = new RegExp(`^[A-Za-z0-9_-]{${LEASE_SECRET_LENGTH}}$`);

/** The fields naming a held lease (HeldLease): the task, its token and its secret. */
function heldLease(f: Fields, draft: Draft, path = ""): void {
  taskRef(f, draft, path);
  draft["token"] = int(f["token"], at(path, "token"), 0);
  draft["secret"] = leaseSecret(f["secret"], at(path, "secret"));
}

/** A lease request's `max`: 1..MAX_LEASES_PER_REQUEST. */
function leaseMax(v: unknown, path: string): number {
  const max = int(v, path, 1);
  if (max > MAX_LEASES_PER_REQUEST) {
    throw new ProtocolError(
      WireErrorCode.BATCH_TOO_LARGE,
      `${path}: ${max} exceeds MAX_LEASES_PER_REQUEST (${MAX_LEASES_PER_REQUEST})`,
    );
  }
  return max;
}

/** Which send of a request id: 1..MAX_ATTEMPT. */
function attemptNumber(v: unknown, path: string): number {
  return argumentUpTo(v, path, 1, MAX_ATTEMPT, "MAX_ATTEMPT");
}

function parseSettleLease(v: unknown, path: string): SettleLease {
  const f = map(v, path, ["owner", "max", "leaseMs", "requestId", "types", "attempt"]);
  const l: Draft = {
    owner: id(f["owner"], at(path, "owner"), true),
    max: leaseMax(f["max"], at(path, "max")),
    leaseMs: leaseDuration(f["leaseMs"], at(path, "leaseMs")),
    requestId: id(f["requestId"], at(path, "requestId"), true),
  };
  put(l, "types", optional(f["types"], at(path, "types"), leaseTypes));
  put(l, "attempt", optional(f["attempt"], at(path, "attempt"), attemptNumber));
  return l as unknown as SettleLease;
}

function parseSettleOutcome(v: unknown, path: string): SettleOutcome {
  if (isPlainMap(v) && "error" in v) {
    const f = map(v, path, ["error"]);
    return { error: parseWireError(f["error"], at(path, "error")) };
  }
  const f = map(v, path, ["duplicate"]);
  return { duplicate: bool(f["duplicate"], at(path, "duplicate")) };
}

/** A request body (the envelope's fields removed). */
export function parseRequest(v: unknown): Request {
  const op = isPlainMap(v) ? v["op"] : undefined;
  if (!isOp(op)) {
    if (!isPlainMap(v)) bad("", "a map", v);
    bad("op", `one of ${OPS.join(", ")}`, op);
  }
  const r: Draft = { op };
  switch (op) {
    // A prepared part has a submit's shape (phase one of a multi-shard submit).
    case "submit":
    case "prepare": {
      const f = map(v, "", ["op", "tasks", "idempotencyKey"]);
      const tasks = bounded(
        f["tasks"],
        "tasks",
        MAX_TASKS_PER_BATCH,
        "BATCH_TOO_LARGE",
        "MAX_TASKS_PER_BATCH",
      );
      r["tasks"] = tasks.map((t, i) => parseTaskInput(t, at("tasks", i)));
      r["idempotencyKey"] = id(f["idempotencyKey"], "idempotencyKey", true);
      // An empty batch changes nothing, yet a shard would keep its key for the retention period.
      if (tasks.length === 0) throw new InvalidArgumentError(`tasks: a ${op} carries at least one task`);
      break;
    }
    case "lease": {
      const f = map(v, "", [
        "op",
        "owner",
        "max",
        "leaseMs",
        "waitMs",
        "requestId",
        "types",
        "maxKey",
        "maxTaskId",
        "ask",
        "attempt",
        "replayOnly",
      ]);
      r["owner"] = id(f["owner"], "owner", true);
      r["max"] = leaseMax(f["max"], "max");
      r["leaseMs"] = leaseDuration(f["leaseMs"], "leaseMs");
      r["waitMs"] = argumentUpTo(f["waitMs"], "waitMs", 0, MAX_WAIT_MS, "MAX_WAIT_MS");
      r["requestId"] = id(f["requestId"], "requestId", true);
      put(r, "types", optional(f["types"], "types", leaseTypes));
      put(
        r,
        "maxKey",
        optional(f["maxKey"], "maxKey", (k, p) => num(k, p)),
      );
      put(
        r,
        "maxTaskId",
        optional(f["maxTaskId"], "maxTaskId", (x, p) => id(x, p, true)),
      );
      if (r["maxTaskId"] !== undefined && r["maxKey"] === undefined) {
        throw new InvalidArgumentError("maxTaskId: only with maxKey (it breaks ties at that key)");
      }
      put(r, "ask", optional(f["ask"], "ask", attemptNumber));
      put(r, "attempt", optional(f["attempt"], "attempt", attemptNumber));
      put(
        r,
        "replayOnly",
        optional(f["replayOnly"], "replayOnly", (b, p) => bool(b, p)),
      );
      break;
    }
    case "heartbeat": {
      const f = map(v, "", ["op", "taskId", "workflowId", "token", "secret", "leaseMs"]);
      heldLease(f, r);
      r["leaseMs"] = leaseDuration(f["leaseMs"], "leaseMs");
      break;
    }
    case "complete": {
      const f = map(v, "", ["op", "taskId", "workflowId", "token", "secret", "result"]);
      heldLease(f, r);
      put(r, "result", payload(f["result"], "result"));
      break;
    }
    case "fail": {
      const f = map(v, "", ["op", "taskId", "workflowId", "token", "secret", "retryable", "reason"]);
      heldLease(f, r);
      r["retryable"] = bool(f["retryable"], "retryable");
      r["reason"] = reason(f["reason"], "reason");
      break;
    }
    case "release":
      heldLease(map(v, "", ["op", "taskId", "workflowId", "token", "secret"]), r);
      break;
    case "settle": {
      const f = map(v, "", ["op", "completes", "lease"]);
      const completes = bounded(
        f["completes"],
        "completes",
        MAX_SETTLES_PER_REQUEST,
        "BATCH_TOO_LARGE",
        "MAX_SETTLES_PER_REQUEST",
      );
      r["completes"] = completes.map((c, i) => {
        const path = at("completes", i);
        const item: Draft = {};
        const f = map(c, path, ["taskId", "workflowId", "token", "secret", "result"]);
        heldLease(f, item, path);
        put(item, "result", payload(f["result"], at(path, "result")));
        return item;
      });
      put(r, "lease", optional(f["lease"], "lease", parseSettleLease));
      break;
    }
    case "cancel": {
      const f = map(v, "", ["op", "taskId", "workflowId", "reason"]);
      taskRef(f, r);
      put(r, "reason", optional(f["reason"], "reason", reason));
      break;
    }
    case "updateDeadline": {
      const f = map(v, "", ["op", "taskId", "workflowId", "deadline"]);
      taskRef(f, r);
      r["deadline"] = deadline(f["deadline"], "deadline", r["taskId"] as string);
      break;
    }
    case "getTask": {
      taskRef(map(v, "", ["op", "taskId", "workflowId"]), r);
      break;
    }
    case "stats": {
      map(v, "", ["op"]);
      break;
    }
    case "listTasks": {
      const f = map(v, "", [
        "op",
        "states",
        "workflowId",
        "types",
        "deadlineFrom",
        "deadlineTo",
        "after",
        "limit",
      ]);
      put(r, "states", optional(f["states"], "states", stateFilter));
      put(
        r,
        "workflowId",
        optional(f["workflowId"], "workflowId", (w, p) => id(w, p)),
      );
      put(r, "types", optional(f["types"], "types", leaseTypes));
      put(r, "deadlineFrom", optional(f["deadlineFrom"], "deadlineFrom", deadlineBound));
      put(r, "deadlineTo", optional(f["deadlineTo"], "deadlineTo", deadlineBound));
      put(r, "after", optional(f["after"], "after", parseListCursor));
      r["limit"] = argumentUpTo(f["limit"], "limit", 1, MAX_LIST_LIMIT, "MAX_LIST_LIMIT");
      break;
    }
    case "getWorkflow": {
      const f = map(v, "", ["op", "workflowId", "after", "limit"]);
      r["workflowId"] = id(f["workflowId"], "workflowId", true);
      put(r, "after", optional(f["after"], "after", parseListCursor));
      r["limit"] = argumentUpTo(f["limit"], "limit", 1, MAX_LIST_LIMIT, "MAX_LIST_LIMIT");
      break;
    }
    case "retry": {
      const f = map(v, "", ["op", "taskId", "workflowId", "deadline"]);
      taskRef(f, r);
      put(
        r,
        "deadline",
        optional(f["deadline"], "deadline", (d, p) => deadline(d, p, r["taskId"] as string)),
      );
      break;
    }
    case "commit":
    case "abort": {
      const f = map(v, "", ["op", "idempotencyKey"]);
      r["idempotencyKey"] = id(f["idempotencyKey"], "idempotencyKey", true);
      break;
    }
    case "moveSlot": {
      const f = map(v, "", ["op", "slot", "target", "moveId"]);
      r["slot"] = slotNumber(f["slot"], "slot");
      r["target"] = shardToken(f["target"], "target");
      r["moveId"] = id(f["moveId"], "moveId", true);
      break;
    }
    case "adopt": {
      const f = map(v, "", ["op", "moveId", "slot", "source", "part", "parts", "tasks", "entries", "leases"]);
      r["moveId"] = id(f["moveId"], "moveId", true);
      r["slot"] = slotNumber(f["slot"], "slot");
      r["source"] = shardToken(f["source"], "source");
      r["parts"] = argumentUpTo(f["parts"], "parts", 1, MAX_MOVE_PARTS, "MAX_MOVE_PARTS");
      const part = int(f["part"], "part", 0);
      if (part >= (r["parts"] as number)) bad("part", `a part below parts (${r["parts"]})`, part);
      r["part"] = part;
      const many = (key: string) =>
        bounded(f[key], key, MAX_MOVE_PART_TASKS, "BATCH_TOO_LARGE", "MAX_MOVE_PART_TASKS");
      r["tasks"] = many("tasks").map((t, i) => parseTaskRecord(t, at("tasks", i)));
      r["entries"] = many("entries").map((e, i) => parseMovedEntry(e, at("entries", i)));
      r["leases"] = many("leases").map((l, i) => {
        const path = at("leases", i);
        const g = map(l, path, ["taskId", "token", "secret"]);
        return {
          taskId: id(g["taskId"], at(path, "taskId"), true),
          token: int(g["token"], at(path, "token"), 1),
          secret: leaseSecret(g["secret"], at(path, "secret")),
        };
      });
      break;
    }
    case "check": {
      const f = map(v, "", ["op", "tasks"]);
      const tasks = bounded(
        f["tasks"],
        "tasks",
        MAX_TASKS_PER_BATCH,
        "BATCH_TOO_LARGE",
        "MAX_TASKS_PER_BATCH",
      );
      r["tasks"] = tasks.map((t, i) => parseTaskInput(t, at("tasks", i)));
      if (tasks.length === 0) throw new InvalidArgumentError("tasks: a check carries at least one task");
      break;
    }
  }
  return r as unknown as Request;
}

// ---------------------------------------------------------------- replies

function parseProblem(v: unknown, path: string): Problem {
  const f = map(v, path, ["taskId", "code", "message"]);
  return {
    taskId: text(f["taskId"], at(path, "taskId"), MAX_ID_LENGTH),
    code: oneOf(f["code"], at(path, "code"), PROBLEM_CODES),
    message: text(f["message"], at(path, "message"), MAX_REASON_LENGTH),
  };
}

export function parseWireError(v: unknown, path: string): WireError {
  const f = map(v, path, [
    "code",
    "message",
    "retryable",
    "problems",
    "taskId",
    "state",
    "detail",
    "workflows",
  ]);
  const code = f["code"];
  if (!isWireErrorCode(code)) bad(at(path, "code"), "a code of the wire error catalogue", code);
  const e: Draft = {
    code,
    message: text(f["message"], at(path, "message"), MAX_ERROR_MESSAGE_LENGTH),
    retryable: bool(f["retryable"], at(path, "retryable")),
  };
  const problemsPath = at(path, "problems");
  put(
    e,
    "problems",
    optional(f["problems"], problemsPath, (p) =>
      bounded(p, problemsPath, MAX_PROBLEMS, "BAD_MESSAGE", "MAX_PROBLEMS").map((x, i) =>
        parseProblem(x, at(problemsPath, i)),
      ),
    ),
  );
  put(
    e,
    "taskId",
    optional(f["taskId"], at(path, "taskId"), (x, p) => text(x, p, MAX_ID_LENGTH)),
  );
  put(
    e,
    "state",
    optional(f["state"], at(path, "state"), (x, p) => text(x, p, MAX_ID_LENGTH)),
  );
  put(
    e,
    "detail",
    optional(f["detail"], at(path, "detail"), (x, p) => {
      if (code !== "SHARD_UNAVAILABLE") bad(p, "absent: only SHARD_UNAVAILABLE carries a detail", x);
      if (!isShardUnavailableDetail(x)) bad(p, `one of ${SHARD_UNAVAILABLE_DETAILS.join(", ")}`, x);
      return x;
    }),
  );
  const workflowsPath = at(path, "workflows");
  put(
    e,
    "workflows",
    optional(f["workflows"], workflowsPath, (x, p) => {
      if (code !== "AMBIGUOUS_TASK") bad(p, "absent: only AMBIGUOUS_TASK lists workflows", x);
      return bounded(x, p, MAX_AMBIGUOUS_WORKFLOWS, "BAD_MESSAGE", "MAX_AMBIGUOUS_WORKFLOWS").map((w, i) =>
        w === null ? null : text(w, at(p, i), MAX_ID_LENGTH),
      );
    }),
  );
  return e as unknown as WireError;
}

/** A reply body (the envelope's fields removed). */
export function parseReply(v: unknown): Reply {
  if (!isPlainMap(v)) bad("", "a map", v);
  const ok = v["ok"];
  if (ok === false) {
    const f = map(v, "", ["ok", "error"]);
    return { ok: false, error: parseWireError(f["error"], "error") };
  }
  if (ok !== true) bad("ok", "a boolean", ok);
  const op = v["op"];
  if (!isOp(op)) bad("op", `one of ${OPS.join(", ")}`, op);
  const r: Draft = { ok, op };
  switch (op) {
    case "submit":
    case "commit": {
      const f = map(v, "", ["ok", "op", "accepted", "replayed"]);
      r["accepted"] = int(f["accepted"], "accepted", 0);
      r["replayed"] = bool(f["replayed"], "replayed");
      break;
    }
    case "lease": {
      const f = map(v, "", ["ok", "op", "leases", "frontier", "shards"]);
      r["leases"] = parseLeases(f["leases"], "leases");
      if (f["frontier"] !== undefined) r["frontier"] = parseFrontier(f["frontier"]);
      if (f["shards"] !== undefined) {
        const shards = list(f["shards"], "shards").map((s, i) => shardToken(s, at("shards", i)));
        if (shards.length !== (r["leases"] as readonly unknown[]).length)
          bad(
            "shards",
            `one shard id per lease (${(r["leases"] as readonly unknown[]).length})`,
            f["shards"],
          );
        r["shards"] = shards;
      }
      break;
    }
    case "settle": {
      const f = map(v, "", ["ok", "op", "results", "leases", "frontier"]);
      const results = bounded(
        f["results"],
        "results",
        MAX_SETTLES_PER_REQUEST,
        "BATCH_TOO_LARGE",
        "MAX_SETTLES_PER_REQUEST",
      );
      r["results"] = results.map((x, i) => parseSettleOutcome(x, at("results", i)));
      r["leases"] = parseLeases(f["leases"], "leases");
      if (f["frontier"] !== undefined) r["frontier"] = parseFrontier(f["frontier"]);
      break;
    }
    case "heartbeat":
      r["expiresAt"] = num(map(v, "", ["ok", "op", "expiresAt"])["expiresAt"], "expiresAt");
      break;
    case "complete":
    case "release":
      r["duplicate"] = bool(map(v, "", ["ok", "op", "duplicate"])["duplicate"], "duplicate");
      break;
    case "fail":
      r["state"] = oneOf(map(v, "", ["ok", "op", "state"])["state"], "state", TASK_STATES);
      break;
    case "cancel":
    case "updateDeadline":
    case "abort":
      map(v, "", ["ok", "op"]);
      break;
    case "prepare":
      r["accepted"] = int(map(v, "", ["ok", "op", "accepted"])["accepted"], "accepted", 0);
      break;
    case "moveSlot":
      r["tasks"] = int(map(v, "", ["ok", "op", "tasks"])["tasks"], "tasks", 0);
      break;
    case "adopt":
      r["adopted"] = bool(map(v, "", ["ok", "op", "adopted"])["adopted"], "adopted");
      break;
    case "check": {
      const problems = map(v, "", ["ok", "op", "problems"])["problems"];
      r["problems"] = bounded(problems, "problems", MAX_PROBLEMS, "BAD_MESSAGE", "MAX_PROBLEMS").map((x, i) =>
        parseProblem(x, at("problems", i)),
      );
      break;
    }
    case "getTask": {
      const task = map(v, "", ["ok", "op", "task"])["task"];
      r["task"] = task === null ? null : parseTaskView(task, "task");
      break;
    }
    case "stats": {
      const f = map(v, "", ["ok", "op", "stats", "shards", "byShard"]);
      r["stats"] = parseStats(f["stats"], "stats");
      put(r, "shards", optional(f["shards"], "shards", parseShardCoverage));
      put(r, "byShard", optional(f["byShard"], "byShard", parseByShard));
      break;
    }
    case "listTasks": {
      const f = map(v, "", ["ok", "op", "tasks", "next", "shards"]);
      r["tasks"] = parseSummaries(f["tasks"], "tasks");
      r["next"] = f["next"] === null ? null : parseListCursor(f["next"], "next");
      put(r, "shards", optional(f["shards"], "shards", parseShardCoverage));
      break;
    }
    case "getWorkflow": {
      const f = map(v, "", ["ok", "op", "tasks", "next"]);
      r["tasks"] = parseSummaries(f["tasks"], "tasks");
      r["next"] = f["next"] === null ? null : parseListCursor(f["next"], "next");
      break;
    }
    case "retry":
      r["state"] = oneOf(map(v, "", ["ok", "op", "state"])["state"], "state", TASK_STATES);
      break;
  }
  return r as unknown as Reply;
}

function parseLeases(v: unknown, path: string): Lease[] {
  const leases = bounded(v, path, MAX_LEASES_PER_REQUEST, "BATCH_TOO_LARGE", "MAX_LEASES_PER_REQUEST");
  return leases.map((l, i) => parseLease(l, at(path, i)));
}

/** A shard id: a subject token. */
function shardToken(v: unknown, path: string): string {
  const shardId = str(v, path);
  if (!isValidToken(shardId)) bad(path, "a subject-safe token ([A-Za-z0-9_-], 1..64)", shardId);
  return shardId;
}

// --------------------------------------------------------------- frontier

/** `depth`: at most MAX_FRONTIER_DEPTH keys, ascending, the first one the announcement's key. */
function frontierDepth(v: unknown, path: string, key: number | null): number[] {
  const items = bounded(v, path, MAX_FRONTIER_DEPTH, "BAD_MESSAGE", "MAX_FRONTIER_DEPTH");
  const depth = items.map((k, i) => num(k, at(path, i)));
  if (depth.length > 0 && depth[0] !== key) bad(at(path, 0), `the announcement's key (${key})`, depth[0]);
  for (let i = 1; i < depth.length; i++) {
    if (depth[i]! < depth[i - 1]!) bad(at(path, i), `a key no less than ${depth[i - 1]}`, depth[i]);
  }
  return depth;
}

/** An announcement's per-type frontiers: at most MAX_ANNOUNCED_TYPES, each type once, in dispatch order. */
function typeFrontiers(v: unknown, path: string): TypeFrontierAnnouncement[] {
  const seen = new Set<string>();
  let previous: { key: number; taskId: string } | undefined;
  return bounded(v, path, MAX_ANNOUNCED_TYPES, "BAD_MESSAGE", "MAX_ANNOUNCED_TYPES").map((item, i) => {
    const itemPath = at(path, i);
    const f = map(item, itemPath, ["type", "key", "deadline", "taskId", "runnable", "depth"]);
    const type = taskType(f["type"], at(itemPath, "type"));
    if (seen.has(type)) bad(at(itemPath, "type"), "each type once", type);
    seen.add(type);
    const key = num(f["key"], at(itemPath, "key"));
    const taskId = id(f["taskId"], at(itemPath, "taskId"));
    if (previous !== undefined && (key < previous.key || (key === previous.key && taskId < previous.taskId)))
      bad(at(itemPath, "key"), "types in dispatch order of their first tasks", key);
    previous = { key, taskId };
    const t: Draft = {
      type,
      key,
      deadline: num(f["deadline"], at(itemPath, "deadline")),
      taskId,
      runnable: int(f["runnable"], at(itemPath, "runnable"), 1),
    };
    put(
      t,
      "depth",
      optional(f["depth"], at(itemPath, "depth"), (d, p) => frontierDepth(d, p, key)),
    );
    return t as unknown as TypeFrontierAnnouncement;
  });
}

/** A frontier announcement body (the envelope's fields removed). */
export function parseFrontier(v: unknown): FrontierAnnouncement {
  const f = map(v, "", [
    "shardId",
    "deadline",
    "key",
    "taskId",
    "runnable",
    "types",
    "typesOmitted",
    "seq",
    "at",
    "depth",
  ]);
  const shardId = shardToken(f["shardId"], "shardId");
  const deadline = f["deadline"] === null ? null : num(f["deadline"], "deadline");
  const taskId = f["taskId"] === null ? null : id(f["taskId"], "taskId");
  const key = f["key"] === null ? null : num(f["key"], "key");
  if ((deadline === null) !== (taskId === null) || (deadline === null) !== (key === null)) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      "deadline, key, taskId: all null (nothing runnable) or all set",
    );
  }
  const a: Draft = {
    shardId,
    deadline,
    key,
    taskId,
    runnable: int(f["runnable"], "runnable", 0),
    seq: int(f["seq"], "seq", 0),
    at: num(f["at"], "at"),
  };
  put(
    a,
    "depth",
    optional(f["depth"], "depth", (d, p) => frontierDepth(d, p, key)),
  );
  put(a, "types", optional(f["types"], "types", typeFrontiers));
  put(
    a,
    "typesOmitted",
    optional(f["typesOmitted"], "typesOmitted", (x, p) => int(x, p, 0)),
  );
  return a as unknown as FrontierAnnouncement;
}
