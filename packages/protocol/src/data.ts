/**
 * Schemas of the data the messages carry: the engine's own shapes (TaskInput,
 * Task, Lease, TaskView, TaskRecord, TaskSummary, SchedulerStats, Problem,
 * whose types stay @frontier/core's), the wire error, and the ids, times and
 * limits they are made of.
 *
 * An engine shape's schema is held to the engine's type by `engineShape`:
 * the same fields, each of the same type, so a field added to the engine does
 * not compile here until the wire checks it too.
 *
 * What is checked here: types (integers where a count, token or duration is
 * meant), membership of enumerations, and the limits of limits.ts. What is
 * not: the meaning of task definitions (empty ids, duplicates, cycles,
 * attempts in range), which the engine reports per task in one
 * ValidationError. Task payloads are opaque; their size is checked by the
 * codec, which can measure encoded bytes.
 */
import {
  isTaskType,
  type Lease,
  MAX_TASK_TYPE_LENGTH,
  type PrerequisiteFailurePolicy,
  type Problem,
  ProblemCode,
  type SchedulerStats,
  type Task,
  type TaskInput,
  type TaskRecord,
  TaskState,
  type TaskSummary,
  type TaskView,
  type TypeCounts,
} from "@frontier/core";
import * as v from "valibot";
import { clip, isWireErrorCode, SHARD_UNAVAILABLE_DETAILS, WireErrorCode } from "./errors.js";
import {
  LEASE_SECRET_LENGTH,
  MAX_AMBIGUOUS_WORKFLOWS,
  MAX_ATTEMPT,
  MAX_DEADLINE,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_ID_LENGTH,
  MAX_LEASE_MS,
  MAX_LEASE_TYPES,
  MAX_LEASES_PER_REQUEST,
  MAX_PAYLOAD_DEPTH,
  MAX_PREREQUISITES,
  MAX_PROBLEMS,
  MAX_REASON_LENGTH,
  MAX_STATS_TYPES,
  MAX_TIMEOUT_MS,
  SECONDS_LIKE_DEADLINES,
} from "./limits.js";
import {
  bool,
  bounded,
  checked,
  count,
  describe,
  eachOnce,
  expectedText,
  type Failure,
  type IssueCode,
  integerFrom,
  kind,
  list,
  map,
  mistake,
  nullable,
  num,
  oneOf,
  optional,
  positive,
  rule,
  type Schema,
  say,
  str,
  text,
} from "./schema.js";
import { SLOT_COUNT } from "./slots.js";
import { isValidToken } from "./subjects.js";

// ------------------------------------------------------------ engine types

/** True when A and B have the same fields, each assignable both ways. */
type SameShape<A, B> = [keyof A, keyof B] extends [keyof B, keyof A]
  ? [A, B] extends [B, A]
    ? true
    : false
  : false;

/** `schema` as the schema of the engine's type `T`; compiles only when its output has T's shape. */
function engineShape<T>() {
  return <S extends Schema<unknown>>(
    schema: S & (SameShape<v.InferOutput<S>, T> extends true ? unknown : { "differs from the engine's": T }),
  ): Schema<T> => schema as unknown as Schema<T>;
}

// --------------------------------------------------------------------- ids

/** With the `u` flag only an unpaired surrogate falls in this range. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * An id: a string of at most MAX_ID_LENGTH, well-formed Unicode (with
 * `nonEmpty`, not empty either: an id the protocol itself relies on).
 * Strings travel as UTF-8, where a lone surrogate turns into U+FFFD: the
 * receiver would know the task by another id.
 */
function anId(nonEmpty: boolean): Schema<string> {
  return checked(
    "a string",
    (x): x is string =>
      typeof x === "string" &&
      x.length <= MAX_ID_LENGTH &&
      (x.length > 0 || !nonEmpty) &&
      !LONE_SURROGATE.test(x),
    (x) => {
      if (typeof x !== "string") return mistake("a string", x);
      if (nonEmpty && x.length === 0) return mistake("a non-empty string", x);
      if (LONE_SURROGATE.test(x)) return mistake("well-formed Unicode (no lone surrogate)", x);
      return {
        code: WireErrorCode.ID_TOO_LONG,
        text: `${x.length} characters exceed MAX_ID_LENGTH (${MAX_ID_LENGTH})`,
      };
    },
  );
}

export const id = anId(false);
export const nonEmptyId = anId(true);

/** A string that `is` accepts, else `expected <what>`. */
function stringOf(what: string, is: (s: string) => boolean): Schema<string> {
  return checked(
    "a string",
    (x): x is string => typeof x === "string" && is(x),
    (x) => mistake(typeof x === "string" ? what : "a string", x),
  );
}

/** A shard id: a subject token. */
export const shardToken = stringOf("a subject-safe token ([A-Za-z0-9_-], 1..64)", isValidToken);

/** A task type the other side produced: TASK_TYPE_PATTERN, else BAD_MESSAGE. */
export const taskType = stringOf(`a task type (1..${MAX_TASK_TYPE_LENGTH} of [A-Za-z0-9_.-])`, isTaskType);

const LEASE_SECRET = new RegExp(`^[A-Za-z0-9_-]{${LEASE_SECRET_LENGTH}}$`);

/** A lease secret: LEASE_SECRET_LENGTH base64url characters. */
export const leaseSecret = stringOf(`a lease secret (${LEASE_SECRET_LENGTH} base64url characters)`, (s) =>
  LEASE_SECRET.test(s),
);

/** A task's prerequisites (or any list of task ids): at most MAX_PREREQUISITES. */
export const prerequisites = bounded(
  id,
  MAX_PREREQUISITES,
  "MAX_PREREQUISITES",
  WireErrorCode.TOO_MANY_PREREQUISITES,
);

/** An integer from `min` up to `max`, else `expected <what>` (a shape error, not a limit). */
export function intWithin(min: number, max: number, what: string): Schema<number> {
  return checked(
    integerFrom(min),
    (x): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= min && x <= max,
    (x) =>
      typeof x === "number" && Number.isSafeInteger(x) && x >= min
        ? mistake(what, x)
        : mistake(integerFrom(min), x),
  );
}

/** A slot number: below SLOT_COUNT. */
export const slotNumber = intWithin(0, SLOT_COUNT - 1, `a slot below ${SLOT_COUNT}`);

// -------------------------------------------------------- request arguments

/**
 * A request argument: an integer from `min` up to the limit `name` (its
 * value `limit`); beyond it INVALID_ARGUMENT, the engine's class, naming the
 * limit (or `code`, for a limit of the boundary).
 */
export function upTo(
  min: number,
  limit: number,
  name: string,
  code: IssueCode = WireErrorCode.INVALID_ARGUMENT,
): Schema<number> {
  return checked(
    integerFrom(min),
    (x): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= min && x <= limit,
    (x) =>
      typeof x === "number" && Number.isSafeInteger(x) && x >= min
        ? { code, text: `${x} exceeds ${name} (${limit})` }
        : mistake(integerFrom(min), x),
  );
}

/** A lease duration, ms: 1..MAX_LEASE_MS. */
export const leaseDuration = upTo(1, MAX_LEASE_MS, "MAX_LEASE_MS");
/** Which send of a request id: 1..MAX_ATTEMPT. */
export const attemptNumber = upTo(1, MAX_ATTEMPT, "MAX_ATTEMPT");
/** A lease request's `max`: 1..MAX_LEASES_PER_REQUEST, beyond it BATCH_TOO_LARGE. */
export const leaseMax = upTo(
  1,
  MAX_LEASES_PER_REQUEST,
  "MAX_LEASES_PER_REQUEST",
  WireErrorCode.BATCH_TOO_LARGE,
);

/** A reason the client wrote: too long is an argument out of range. */
export const reason = text(MAX_REASON_LENGTH, "MAX_REASON_LENGTH", WireErrorCode.INVALID_ARGUMENT);

/**
 * The types a lease names: 1..MAX_LEASE_TYPES distinct task types. A bad
 * list is an argument out of range (INVALID_ARGUMENT), naming the culprit.
 */
export const leaseTypes = v.pipe(
  list(
    v.custom<string>(
      isTaskType,
      say(
        WireErrorCode.INVALID_ARGUMENT,
        (x) =>
          `${describe(x)} is not a task type (1..${MAX_TASK_TYPE_LENGTH} of letters, digits, "_", "." and "-")`,
      ),
    ),
    "a list of task types",
  ),
  rule<readonly string[]>((types) =>
    types.length === 0 || types.length > MAX_LEASE_TYPES
      ? {
          code: WireErrorCode.INVALID_ARGUMENT,
          text: `1..${MAX_LEASE_TYPES} task types (MAX_LEASE_TYPES), got ${types.length}`,
        }
      : undefined,
  ),
  eachOnce(
    (type: string) => type,
    (type, i) => ({
      at: [i],
      code: WireErrorCode.INVALID_ARGUMENT,
      text: `${JSON.stringify(type)} is named twice`,
    }),
  ),
);

/**
 * A deadline (or a task's notBefore) a client sends for a task, checked
 * where the task's id is known (a rule of the map holding both): within
 * ±MAX_DEADLINE, and not one that looks like seconds
 * (SECONDS_LIKE_DEADLINES); else INVALID_ARGUMENT naming the task. NaN and
 * ±Infinity pass: the engine refuses them as MALFORMED, with the batch's
 * other problems.
 */
export function clientTime<F extends string, I extends string>(field: F, idField: I) {
  const unit = field === "deadline" ? "deadlines are milliseconds" : `${field} is in milliseconds`;
  return (value: { readonly [K in F]?: number } & { readonly [K in I]: string }): Failure | undefined => {
    const d = value[field];
    if (d === undefined || !Number.isFinite(d)) return undefined;
    const outside = d > MAX_DEADLINE || d < -MAX_DEADLINE;
    if (!outside && !(d > SECONDS_LIKE_DEADLINES.above && d < SECONDS_LIKE_DEADLINES.below)) return undefined;
    const task = `task ${JSON.stringify(clip(value[idField], 80))}`;
    return {
      at: [field],
      code: WireErrorCode.INVALID_ARGUMENT,
      text: outside
        ? `${task}: ${field} ${d} is outside ±MAX_DEADLINE (${MAX_DEADLINE}); ${unit} since the epoch`
        : `${task}: ${field} ${d} looks like seconds since the epoch (${new Date(d * 1000).toISOString()}); ${unit}`,
    };
  };
}

// ------------------------------------------------------------------- tasks

/**
 * A task payload (or result): opaque, but nested at most MAX_PAYLOAD_DEPTH
 * deep (arrays and maps). Walked without recursion, so a payload too deep to
 * walk by recursion is refused too. Its size is the codec's to check.
 */
export const payload = v.custom<unknown>(
  (p) => nestedWithin(p, MAX_PAYLOAD_DEPTH),
  say(WireErrorCode.BAD_MESSAGE, `nested deeper than MAX_PAYLOAD_DEPTH (${MAX_PAYLOAD_DEPTH})`),
);

function nestedWithin(v: unknown, maxDepth: number): boolean {
  if (v === null || typeof v !== "object") return true;
  const stack: [value: object, depth: number][] = [[v, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > maxDepth) return false;
    const children = Array.isArray(value) ? value : value instanceof Uint8Array ? [] : Object.values(value);
    for (const child of children)
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return true;
}

/** A flag that is `true` or absent, never `false` (the engine's optional `true` fields). */
const onlyTrue = kind("true", (x): x is true => x === true);

const FAILURE_POLICIES: readonly PrerequisiteFailurePolicy[] = ["cancel", "continue"];
const TASK_STATES = Object.values(TaskState);
export const taskState = oneOf(TASK_STATES);

/** A task definition: types and limits only; its meaning is the engine's to check. */
export const taskInput = engineShape<TaskInput>()(
  map(
    {
      id,
      deadline: num,
      prerequisites: optional(prerequisites),
      workflowId: optional(id),
      large: optional(bool),
      payload: optional(payload),
      // Its meaning (TASK_TYPE_PATTERN) is the engine's to check, so a bad type is one MALFORMED problem among the batch's.
      type: optional(text(MAX_ID_LENGTH)),
      maxAttempts: optional(num),
      hardDeadline: optional(bool),
      onPrerequisiteFailure: optional(oneOf(FAILURE_POLICIES)),
      // A time like a deadline: the same range and the same seconds check.
      notBefore: optional(num),
      timeoutMs: optional(upTo(1, MAX_TIMEOUT_MS, "MAX_TIMEOUT_MS")),
    },
    clientTime("deadline", "id"),
    clientTime("notBefore", "id"),
  ),
);

export const task = engineShape<Task>()(
  map({
    id,
    deadline: num,
    prerequisites,
    workflowId: optional(id),
    large: optional(onlyTrue),
    payload: optional(payload),
    type: optional(taskType),
    timeoutMs: optional(positive),
  }),
);

/** A lease's prerequisites' results: at most one per prerequisite, each `{ taskId, result }`. */
const prerequisiteResults = bounded(
  map({ taskId: id, result: payload }),
  MAX_PREREQUISITES,
  "MAX_PREREQUISITES",
  WireErrorCode.BAD_MESSAGE,
);

export const lease = engineShape<Lease>()(
  map({
    taskId: id,
    owner: id,
    token: count,
    secret: optional(leaseSecret),
    expiresAt: num,
    attempt: positive,
    task,
    results: optional(prerequisiteResults),
    resultsOmitted: optional(positive),
  }),
);

/** A TaskRecord's spec: a task's input fields but its deadline (status: it can change), with the engine's defaults. */
const specEntries = {
  id,
  prerequisites,
  workflowId: optional(id),
  large: optional(onlyTrue),
  payload: optional(payload),
  type: optional(taskType),
  maxAttempts: positive,
  hardDeadline: bool,
  onPrerequisiteFailure: oneOf(FAILURE_POLICIES),
  notBefore: optional(num),
  timeoutMs: optional(positive),
};

/** A TaskRecord's status: the rest of a TaskView, but unmetPrerequisites. */
const statusEntries = {
  state: taskState,
  deadline: num,
  attempts: count,
  token: count,
  leaseOwner: optional(id),
  leaseExpiresAt: optional(num),
  timeoutAt: optional(num),
  retryAt: optional(num),
  runnableSince: optional(num),
  finishedAt: optional(num),
  reason: optional(str),
  result: optional(payload),
  /** Only ever `true` (absent otherwise): the lease under `token` was released and none granted since. */
  released: optional(onlyTrue),
  /** Large workflows: remote prerequisites applied (at most one per prerequisite). */
  remoteMet: optional(prerequisites),
  /** Large workflows: dependents in other partitions (any number: a fan-out). */
  remoteDependents: optional(list(id)),
  /** Only ever `true`: every remote dependent was told the task's outcome. */
  remoteDelivered: optional(onlyTrue),
};

export const taskView = engineShape<TaskView>()(
  map({ ...specEntries, ...statusEntries, unmetPrerequisites: count }),
);

/** A task as a journal holds it (`{ spec, status }`), checked as a TaskView's fields are. */
export const taskRecord = engineShape<TaskRecord>()(
  map({ spec: map(specEntries), status: map(statusEntries) }),
);

export const taskSummary = engineShape<TaskSummary>()(
  map({
    id,
    workflowId: optional(id),
    type: optional(taskType),
    state: taskState,
    deadline: num,
    attempts: count,
    maxAttempts: positive,
    reason: optional(str),
    finishedAt: optional(num),
    prerequisites: optional(prerequisites),
  }),
);

/** A list of task states: 1..7 distinct. */
export const stateFilter = v.pipe(
  list(taskState),
  rule<readonly TaskState[]>((states) =>
    states.length === 0
      ? { code: WireErrorCode.INVALID_ARGUMENT, text: "name at least one state, or leave it out" }
      : new Set(states).size !== states.length
        ? { code: WireErrorCode.INVALID_ARGUMENT, text: "a state appears twice" }
        : undefined,
  ),
);

// ------------------------------------------------------------------- stats

/** Per-type counts of a stats reply: at most MAX_STATS_TYPES, each type once. */
const typeCounts = v.pipe(
  bounded(
    engineShape<TypeCounts>()(map({ type: taskType, runnable: count, leased: count })),
    MAX_STATS_TYPES,
    "MAX_STATS_TYPES",
    WireErrorCode.BAD_MESSAGE,
  ),
  eachOnce(
    (c: TypeCounts) => c.type,
    (c, i): Failure => ({
      at: [i, "type"],
      code: "BAD_MESSAGE",
      text: expectedText("each type once", c.type),
    }),
  ),
);

/** A count per task state, each state once. */
const counts = map(Object.fromEntries(TASK_STATES.map((s) => [s, count]))) as unknown as Schema<
  Readonly<Record<TaskState, number>>
>;

const statsEntries = {
  counts,
  runnable: count,
  oldestRunnableAgeMs: num,
  frontierDeadline: nullable(num),
  leaseTimeouts: count,
  attemptTimeouts: count,
  deadlineMisses: count,
  staleRejections: count,
  retries: count,
  leased: count,
};

export const stats = engineShape<SchedulerStats>()(
  map({
    ...statsEntries,
    types: optional(typeCounts),
    typesOmitted: optional(positive),
    remoteOwed: optional(positive),
  }),
);

/** Stats without per-type counts: a shard's entry in a coordinator's `byShard`. */
export const statsWithoutTypes = engineShape<Omit<SchedulerStats, "types" | "typesOmitted">>()(
  map({ ...statsEntries, remoteOwed: optional(positive) }),
);

// ----------------------------------------------------------------- errors

const problem = engineShape<Problem>()(
  map({
    taskId: text(MAX_ID_LENGTH),
    code: oneOf(Object.values(ProblemCode)),
    message: text(MAX_REASON_LENGTH),
  }),
);

/** Problems of a batch, as an error reply or a check reply carries them: at most MAX_PROBLEMS. */
export const problems = bounded(problem, MAX_PROBLEMS, "MAX_PROBLEMS", WireErrorCode.BAD_MESSAGE);

/** A code of the wire error catalogue. */
export const wireErrorCode = kind("a code of the wire error catalogue", isWireErrorCode);

/** Why a shard is unavailable: one of SHARD_UNAVAILABLE_DETAILS, with SHARD_UNAVAILABLE only. */
export const shardUnavailableDetail = oneOf(SHARD_UNAVAILABLE_DETAILS);

/** The rule of a map with `code` and an optional `detail`: only SHARD_UNAVAILABLE carries a detail. */
export const detailOnlyWhenUnavailable = (e: {
  readonly code: WireErrorCode;
  readonly detail?: string;
}): Failure | undefined =>
  e.detail !== undefined && e.code !== WireErrorCode.SHARD_UNAVAILABLE
    ? {
        at: ["detail"],
        code: WireErrorCode.BAD_MESSAGE,
        text: expectedText("absent: only SHARD_UNAVAILABLE carries a detail", e.detail),
      }
    : undefined;

/** An error as an error reply carries it. */
export const wireError = map(
  {
    code: wireErrorCode,
    /** At most MAX_ERROR_MESSAGE_LENGTH (`toWireError` clips). */
    message: text(MAX_ERROR_MESSAGE_LENGTH),
    retryable: bool,
    /** VALIDATION_FAILED: the offending tasks, at most MAX_PROBLEMS. */
    problems: optional(problems),
    /** UNKNOWN_TASK, STALE_LEASE, INVALID_STATE: the task concerned. */
    taskId: optional(text(MAX_ID_LENGTH)),
    /** INVALID_STATE: the task's state when the operation was refused. */
    state: optional(text(MAX_ID_LENGTH)),
    /** SHARD_UNAVAILABLE: why, when the shard could say (SHARD_UNAVAILABLE_DETAILS). */
    detail: optional(shardUnavailableDetail),
    /** AMBIGUOUS_TASK: the workflows holding a task of that id (null: one without a workflow), at most MAX_AMBIGUOUS_WORKFLOWS. */
    workflows: optional(
      bounded(
        nullable(text(MAX_ID_LENGTH)),
        MAX_AMBIGUOUS_WORKFLOWS,
        "MAX_AMBIGUOUS_WORKFLOWS",
        "BAD_MESSAGE",
      ),
    ),
  },
  detailOnlyWhenUnavailable,
  (e) =>
    e.workflows !== undefined && e.code !== WireErrorCode.AMBIGUOUS_TASK
      ? {
          at: ["workflows"],
          code: WireErrorCode.BAD_MESSAGE,
          text: expectedText("absent: only AMBIGUOUS_TASK lists workflows", e.workflows),
        }
      : undefined,
);

/** An error as an error reply carries it. */
export type WireError = v.InferOutput<typeof wireError>;
