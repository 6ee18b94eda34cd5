/**
 * Validation of submitted tasks. Two layers:
 *  - `parseTask` checks one task's shape and fills defaults (pure, O(size)).
 *  - `checkBatch` checks a whole batch: duplicates, self-dependencies,
 *    unknown prerequisites, workflow boundaries and cycles, against an
 *    optional view of what the engine already holds. Without a view (the
 *    coordinator's pre-check of a large batch) only what the batch alone can
 *    tell is checked.
 *
 * Every problem is collected, so one rejection lists them all.
 */
import { type Problem, ProblemCode } from "./errors.js";
import {
  DEFAULT_TASK_TYPE,
  isTaskType,
  MAX_TASK_TYPE_LENGTH,
  type PrerequisiteFailurePolicy,
  type TaskInput,
  type TaskSpec,
} from "./types.js";

export const MAX_ID_LENGTH = 256;
export const MAX_ATTEMPTS_LIMIT = 1_000;
/** Largest `timeoutMs` the engine holds (a 32-bit count: about 49.7 days in ms). */
export const MAX_TIMEOUT_MS_LIMIT = 2 ** 32 - 1;

/** Every field a task definition may carry; anything else is MALFORMED (a typo must not drop a dependency). */
export const TASK_INPUT_FIELDS: readonly (keyof TaskInput)[] = Object.freeze([
  "id",
  "deadline",
  "prerequisites",
  "workflowId",
  "large",
  "payload",
  "type",
  "maxAttempts",
  "hardDeadline",
  "onPrerequisiteFailure",
  "notBefore",
  "timeoutMs",
]);

const KNOWN_FIELDS: ReadonlySet<string> = new Set(TASK_INPUT_FIELDS);

const NO_PREREQUISITES: readonly string[] = Object.freeze([]);

export interface ParsedTask {
  readonly spec: TaskSpec;
  readonly deadline: number;
  /** What the payload counts for (`measurePayload`); 0 without a payload or a measure. */
  readonly payloadBytes: number;
}

export interface ParseDefaults {
  readonly maxAttempts: number;
}

/**
 * Bytes a payload counts for: a store passes its encoding's size. Throws for
 * a payload it cannot store. Called once per task with a payload.
 */
export type PayloadMeasure = (payload: unknown) => number;

/** Largest size a measured payload may have (the engine keeps sizes as 32-bit counts). */
export const MAX_MEASURED_PAYLOAD_BYTES = 2 ** 32 - 1;

/** Checks one task's shape. Returns the parsed task or the problems found. */
export function parseTask(
  input: unknown,
  index: number,
  defaults: ParseDefaults,
  measurePayload?: PayloadMeasure,
): { task: ParsedTask } | { problems: Problem[] } {
  const parsed = parseOne(input, index, defaults, measurePayload);
  return Array.isArray(parsed) ? { problems: parsed } : { task: parsed };
}

/** parseTask without the wrapper (checkBatch parses every task of every batch). */
function parseOne(
  input: unknown,
  index: number,
  defaults: ParseDefaults,
  measurePayload: PayloadMeasure | undefined,
): ParsedTask | Problem[] {
  // Allocated at the first problem: most tasks have none (this runs once per submitted task).
  let problems: Problem[] | undefined;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return [malformed(`#${index}`, `task #${index} is not an object`)];
  }
  const raw = input as Record<string, unknown>;
  const id = raw["id"];
  const validId = typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH;
  const taskId = validId ? id : `#${index}`;
  if (!validId) {
    (problems ??= []).push(
      malformed(
        taskId,
        typeof id === "string"
          ? `id must be 1..${MAX_ID_LENGTH} characters, got ${id.length}`
          : `id must be a string, got ${describe(id)}`,
      ),
    );
  }
  for (const key in raw) {
    if (!KNOWN_FIELDS.has(key) && Object.hasOwn(raw, key))
      (problems ??= []).push(malformed(taskId, `unknown field ${JSON.stringify(key)}`));
  }
  const deadline = raw["deadline"];
  if (typeof deadline !== "number" || !Number.isFinite(deadline)) {
    (problems ??= []).push(malformed(taskId, `deadline must be a finite number, got ${describe(deadline)}`));
  }
  let prerequisites = NO_PREREQUISITES;
  const prereqs = raw["prerequisites"];
  if (prereqs !== undefined) {
    if (!Array.isArray(prereqs)) {
      (problems ??= []).push(
        malformed(taskId, `prerequisites must be an array of ids, got ${describe(prereqs)}`),
      );
    } else if (prereqs.length > 0) {
      // A private copy (the caller's array may change after the call), of
      // exact length, checked in place: kept only if every element passes.
      // Short lists (the common case) are checked for repeats by a scan, not a Set.
      const copy = (prereqs as unknown[]).slice();
      const seen = copy.length > 8 ? new Set<string>() : undefined;
      for (let k = 0; k < copy.length; k++) {
        const p = copy[k];
        if (typeof p !== "string" || p.length === 0 || p.length > MAX_ID_LENGTH) {
          (problems ??= []).push(malformed(taskId, `prerequisite ${describe(p)} is not a valid id`));
        } else if (seen ? seen.has(p) : listedBefore(copy, k, p)) {
          (problems ??= []).push(malformed(taskId, `prerequisite ${JSON.stringify(p)} is listed twice`));
        } else {
          seen?.add(p);
        }
      }
      prerequisites = copy as string[];
    }
  }
  const workflowId = raw["workflowId"];
  if (workflowId !== undefined && (typeof workflowId !== "string" || workflowId.length === 0)) {
    (problems ??= []).push(
      malformed(taskId, `workflowId must be a non-empty string, got ${describe(workflowId)}`),
    );
  } else if (typeof workflowId === "string" && workflowId.length > MAX_ID_LENGTH) {
    (problems ??= []).push(malformed(taskId, `workflowId must be at most ${MAX_ID_LENGTH} characters`));
  }
  const large = raw["large"] ?? false;
  if (typeof large !== "boolean")
    (problems ??= []).push(malformed(taskId, `large must be a boolean, got ${describe(large)}`));
  else if (large && workflowId === undefined)
    // Placed by (workflowId, id): a large task without a workflow has nothing to spread over.
    (problems ??= []).push(malformed(taskId, "large needs a workflowId"));
  const maxAttempts = raw["maxAttempts"] ?? defaults.maxAttempts;
  if (
    typeof maxAttempts !== "number" ||
    !Number.isInteger(maxAttempts) ||
    maxAttempts < 1 ||
    maxAttempts > MAX_ATTEMPTS_LIMIT
  ) {
    (problems ??= []).push(
      malformed(
        taskId,
        `maxAttempts must be an integer in 1..${MAX_ATTEMPTS_LIMIT}, got ${describe(maxAttempts)}`,
      ),
    );
  }
  const hardDeadline = raw["hardDeadline"] ?? false;
  if (typeof hardDeadline !== "boolean")
    (problems ??= []).push(
      malformed(taskId, `hardDeadline must be a boolean, got ${describe(hardDeadline)}`),
    );
  const policy = raw["onPrerequisiteFailure"] ?? "cancel";
  if (policy !== "cancel" && policy !== "continue") {
    (problems ??= []).push(
      malformed(taskId, `onPrerequisiteFailure must be "cancel" or "continue", got ${describe(policy)}`),
    );
  }
  const notBefore = raw["notBefore"];
  if (notBefore !== undefined) {
    if (typeof notBefore !== "number" || !Number.isFinite(notBefore)) {
      (problems ??= []).push(
        malformed(taskId, `notBefore must be a finite number, got ${describe(notBefore)}`),
      );
    } else if (hardDeadline === true && typeof deadline === "number" && notBefore >= deadline) {
      // It could never be dispatched: refused now rather than expiring unseen at notBefore.
      (problems ??= []).push(
        malformed(taskId, `notBefore ${notBefore} is not before the hard deadline ${deadline}`),
      );
    }
  }
  const type = raw["type"];
  if (type !== undefined && !isTaskType(type)) {
    (problems ??= []).push(
      malformed(
        taskId,
        `type must be 1..${MAX_TASK_TYPE_LENGTH} characters of letters, digits, "_", "." and "-", got ${describe(type)}`,
      ),
    );
  }
  const timeoutMs = raw["timeoutMs"];
  if (
    timeoutMs !== undefined &&
    (typeof timeoutMs !== "number" ||
      !Number.isInteger(timeoutMs) ||
      timeoutMs < 1 ||
      timeoutMs > MAX_TIMEOUT_MS_LIMIT)
  ) {
    (problems ??= []).push(
      malformed(
        taskId,
        `timeoutMs must be an integer in 1..${MAX_TIMEOUT_MS_LIMIT}, got ${describe(timeoutMs)}`,
      ),
    );
  }
  const payload = raw["payload"];
  let payloadBytes = 0;
  if (payload !== undefined && measurePayload !== undefined) {
    // Measured here, in the check, so a payload the store cannot take is refused with the
    // batch's other problems, and the size is known before anything changes.
    try {
      payloadBytes = measurePayload(payload);
    } catch (error) {
      (problems ??= []).push(
        malformed(taskId, `payload cannot be stored: ${String((error as Error)?.message ?? error)}`),
      );
    }
    if (!(Number.isInteger(payloadBytes) && payloadBytes >= 0 && payloadBytes <= MAX_MEASURED_PAYLOAD_BYTES))
      (problems ??= []).push(
        malformed(taskId, `payload measures ${payloadBytes} bytes, more than can be counted`),
      );
  }
  if (problems) return problems;
  // Built field by field rather than with conditional spreads, which allocate
  // a temporary object each (this runs once per submitted task).
  const spec: { -readonly [K in keyof TaskSpec]: TaskSpec[K] } = {
    id: id as string,
    prerequisites,
    maxAttempts: maxAttempts as number,
    hardDeadline: hardDeadline as boolean,
    onPrerequisiteFailure: policy as PrerequisiteFailurePolicy,
  };
  if (workflowId !== undefined) spec.workflowId = workflowId as string;
  if (large === true) spec.large = true;
  if (payload !== undefined) spec.payload = payload;
  // The default type is left out: a spec without one reads as it (journals written before types).
  if (type !== undefined && type !== DEFAULT_TASK_TYPE) spec.type = type as string;
  if (notBefore !== undefined) spec.notBefore = notBefore as number;
  if (timeoutMs !== undefined) spec.timeoutMs = timeoutMs as number;
  return { spec, deadline: deadline as number, payloadBytes };
}

/** What the engine already holds, as batch checks need to see it. */
export interface GraphView {
  readonly allowForwardReferences: boolean;
  /** When set, every prerequisite must share its dependent's workflowId. */
  readonly sameWorkflowPrerequisites: boolean;
  has(id: string): boolean;
  workflowOf(id: string): string | undefined;
  /**
   * Ids of live (non-terminal) tasks that wait on `id`: its dependents if it
   * is known, or the tasks holding a forward reference to it if not.
   */
  waitingOn(id: string): Iterable<string>;
  /** The engine's handle of a known id, or -1. Optional: lets checks hand their lookups on. */
  resolve?(id: string): number;
  /**
   * out[i] = resolve(ids[i]) for every i, at once (much faster than one by
   * one at 10^6 tasks). Optional; only with resolve, and then has(id) must
   * be resolve(id) >= 0.
   */
  resolveMany?(ids: readonly string[], out: Int32Array): void;
  /** workflowId of the task at a handle from `resolve`. */
  workflowAt?(handle: number): string | undefined;
  /** Whether a known task is of a large workflow. Absent: none is. */
  largeOf?(id: string): boolean;
  /** largeOf for the task at a handle from `resolve` (no second lookup of its id). */
  largeAt?(handle: number): boolean;
  /**
   * Whether `prerequisite` of `spec` lives in another partition (a large
   * workflow spread over shards): it is then neither looked up nor checked
   * here, since its own engine checks it when the link to it is registered
   * (RemoteLink). Absent: every prerequisite is local.
   */
  isRemote?(spec: TaskSpec, prerequisite: string): boolean;
}

export interface BatchCheckOptions {
  readonly defaults: ParseDefaults;
  /** Without a view, only what the batch alone can tell is checked. */
  readonly view?: GraphView;
  /** Checked when there is no view (the view carries its own). */
  readonly sameWorkflowPrerequisites?: boolean;
  /** Measures each payload (ParsedTask.payloadBytes); a throw makes the task MALFORMED. */
  readonly measurePayload?: PayloadMeasure;
}

export interface BatchCheckResult {
  readonly tasks: ParsedTask[];
  readonly problems: Problem[];
  /**
   * When the view can resolve ids: for each of `tasks` in order, for each of
   * its prerequisites in order, the engine's handle of it, or -1 (in the
   * batch, or a forward reference), so the engine need not look them up
   * again. One array for the batch, not one per task.
   */
  readonly prerequisiteHandles?: Int32Array;
}

/**
 * Checks a batch. Cost O(V + E) over the batch, plus, with forward
 * references, the live tasks reachable from the batch through references
 * waiting on its ids (the only way a batch can close a cycle through tasks
 * submitted earlier: a graph that was acyclic before can only gain a cycle
 * through a new node, and a new node's only edges towards old nodes are the
 * old nodes' forward references to it).
 */
export function checkBatch(inputs: readonly unknown[], options: BatchCheckOptions): BatchCheckResult {
  // Indexed loops throughout, not for-of: this runs for every task of every
  // batch, and iterator objects that V8 does not optimize away here were
  // most of its allocation.
  const problems: Problem[] = [];
  const tasks: ParsedTask[] = [];
  const view = options.view;
  const sameWorkflow = view ? view.sameWorkflowPrerequisites : (options.sameWorkflowPrerequisites ?? false);
  const batchIndex = new Map<string, ParsedTask>();
  const resolve = view?.resolve ? view.resolve.bind(view) : undefined;
  const resolveMany = resolve && view?.resolveMany ? view.resolveMany.bind(view) : undefined;
  const parsed: (ParsedTask | Problem[])[] = [];
  // With resolveMany, every id is looked up in one go (taken[i] >= 0: already known).
  const ids: string[] | undefined = resolveMany ? [] : undefined;
  for (let i = 0; i < inputs.length; i++) {
    const result = parseOne(inputs[i], i, options.defaults, options.measurePayload);
    parsed.push(result);
    ids?.push(Array.isArray(result) ? "" : result.spec.id);
  }
  let taken: Int32Array | undefined;
  if (resolveMany) resolveMany(ids!, (taken = new Int32Array(ids!.length)));
  for (let i = 0; i < parsed.length; i++) {
    const result = parsed[i]!;
    if (Array.isArray(result)) {
      for (let k = 0; k < result.length; k++) problems.push(result[k]!);
      continue;
    }
    const id = result.spec.id;
    if (batchIndex.has(id)) {
      problems.push({
        taskId: id,
        code: ProblemCode.DUPLICATE_ID,
        message: `id ${q(id)} appears twice in the batch`,
      });
      continue;
    }
    if (taken ? taken[i]! >= 0 : view?.has(id)) {
      problems.push({ taskId: id, code: ProblemCode.DUPLICATE_ID, message: `id ${q(id)} is already taken` });
      continue;
    }
    batchIndex.set(id, result);
    tasks.push(result);
  }
  // With resolveMany, the prerequisites outside the batch are looked up in one go too, in order.
  let outside: Int32Array | undefined;
  let next = 0;
  let edges = 0;
  for (let t = 0; t < tasks.length; t++) edges += tasks[t]!.spec.prerequisites.length;
  if (resolveMany) {
    const names: string[] = [];
    for (let t = 0; t < tasks.length; t++) {
      const prerequisites = tasks[t]!.spec.prerequisites;
      for (let k = 0; k < prerequisites.length; k++)
        if (!batchIndex.has(prerequisites[k]!)) names.push(prerequisites[k]!);
    }
    resolveMany(names, (outside = new Int32Array(names.length)));
  }
  const handles = resolve ? new Int32Array(edges) : undefined;
  let edge = 0;
  for (let t = 0; t < tasks.length; t++) {
    const spec = tasks[t]!.spec;
    const prerequisites = spec.prerequisites;
    for (let k = 0; k < prerequisites.length; k++) {
      const p = prerequisites[k]!;
      const inBatch = batchIndex.get(p);
      const h = inBatch !== undefined ? -1 : outside ? outside[next++]! : resolve ? resolve(p) : -1;
      if (handles) handles[edge++] = h;
      if (p === spec.id) {
        problems.push({
          taskId: spec.id,
          code: ProblemCode.SELF_DEPENDENCY,
          message: `${q(p)} lists itself as a prerequisite`,
        });
        continue;
      }
      // A remote prerequisite in the batch is still checked against its task here (same
      // workflow, large), and still an edge of the cycle check (findCycles).
      if (inBatch === undefined && spec.large === true && view?.isRemote?.(spec, p)) continue;
      const known = inBatch !== undefined || h >= 0 || (!resolve && (view?.has(p) ?? false));
      if (!known) {
        if (view && !view.allowForwardReferences) {
          problems.push({
            taskId: spec.id,
            code: ProblemCode.UNKNOWN_PREREQUISITE,
            message: `prerequisite ${q(p)} is not a known task and is not in the batch`,
          });
        }
        continue;
      }
      if (sameWorkflow) {
        const other = inBatch
          ? inBatch.spec.workflowId
          : h >= 0 && view!.workflowAt
            ? view!.workflowAt(h)
            : view!.workflowOf(p);
        if (other !== spec.workflowId) {
          problems.push({
            taskId: spec.id,
            code: ProblemCode.CROSS_WORKFLOW,
            message: `prerequisite ${q(p)} is in workflow ${q(other)}, not ${q(spec.workflowId)}`,
          });
          continue;
        }
      }
      // A workflow is large or not, whole: its tasks are placed by one rule.
      const otherLarge = inBatch
        ? inBatch.spec.large === true
        : h >= 0 && view!.largeAt
          ? view!.largeAt(h)
          : view?.largeOf?.(p);
      if (otherLarge !== undefined && otherLarge !== (spec.large === true)) {
        problems.push({
          taskId: spec.id,
          code: ProblemCode.CROSS_WORKFLOW,
          message: `prerequisite ${q(p)} is ${otherLarge ? "" : "not "}in a large workflow, and ${q(spec.id)} is${spec.large === true ? "" : " not"}`,
        });
      }
    }
    if (sameWorkflow && view?.allowForwardReferences) {
      for (const waiter of view.waitingOn(spec.id)) {
        const other = view.workflowOf(waiter);
        if (other !== spec.workflowId) {
          problems.push({
            taskId: spec.id,
            code: ProblemCode.CROSS_WORKFLOW,
            message: `task ${q(waiter)} in workflow ${q(other)} waits on it, but it is in ${q(spec.workflowId)}`,
          });
        }
      }
    }
  }
  const cycles = findCycles(tasks, batchIndex, view);
  for (let k = 0; k < cycles.length; k++) problems.push(cycles[k]!);
  return handles ? { tasks, problems, prerequisiteHandles: handles } : { tasks, problems };
}

/**
 * Kahn's algorithm over the batch decides quickly whether there is a cycle
 * at all; only then does a depth-first search name each cycle's path.
 */
function findCycles(
  tasks: readonly ParsedTask[],
  inBatch: ReadonlyMap<string, ParsedTask>,
  view: GraphView | undefined,
): Problem[] {
  // Edges point from a prerequisite to its dependents (the direction work flows).
  const dependents = new Map<string, string[]>();
  const forward = view?.allowForwardReferences === true;
  for (let t = 0; t < tasks.length; t++) {
    const spec = tasks[t]!.spec;
    for (let k = 0; k < spec.prerequisites.length; k++) {
      const p = spec.prerequisites[k]!;
      // Self-dependency is reported on its own. Edges from tasks outside the
      // batch matter only when a path can lead back out to them (forward refs).
      if (p === spec.id || !(forward || inBatch.has(p))) continue;
      let list = dependents.get(p);
      if (!list) dependents.set(p, (list = []));
      list.push(spec.id);
    }
  }
  const successors = (id: string): Iterable<string> => {
    const own = dependents.get(id) ?? [];
    return forward ? concat(own, view!.waitingOn(id)) : own;
  };
  // No edge inside the batch (the common streaming case): nothing to sort.
  if (!forward && (dependents.size === 0 || !hasCycleKahn(dependents))) return [];
  return dfsCycles(
    tasks.map((t) => t.spec.id),
    successors,
  );
}

/**
 * Kahn's algorithm over the tasks that in-batch edges touch (a cycle can
 * only run through those): in a streaming batch, usually a few of them.
 */
function hasCycleKahn(dependents: ReadonlyMap<string, string[]>): boolean {
  const unmet = new Map<string, number>();
  for (const [p, list] of dependents) {
    if (!unmet.has(p)) unmet.set(p, 0);
    for (const d of list) unmet.set(d, (unmet.get(d) ?? 0) + 1);
  }
  const ready: string[] = [];
  for (const [id, n] of unmet) if (n === 0) ready.push(id);
  let done = 0;
  while (ready.length > 0) {
    const id = ready.pop()!;
    done++;
    for (const d of dependents.get(id) ?? []) {
      const left = unmet.get(d)! - 1;
      unmet.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  return done < unmet.size;
}

const WHITE = 0;
const GREY = 1;
const BLACK = 2;

/** Iterative three-colour DFS; each back edge found is reported as a cycle path. */
function dfsCycles(starts: readonly string[], successors: (id: string) => Iterable<string>): Problem[] {
  const colour = new Map<string, number>();
  const problems: Problem[] = [];
  const path: string[] = [];
  const iterators: Iterator<string>[] = [];
  for (const start of starts) {
    if ((colour.get(start) ?? WHITE) !== WHITE) continue;
    colour.set(start, GREY);
    path.push(start);
    iterators.push(successors(start)[Symbol.iterator]());
    while (iterators.length > 0) {
      const next = iterators[iterators.length - 1]!.next();
      if (next.done) {
        iterators.pop();
        colour.set(path.pop()!, BLACK);
        continue;
      }
      const id = next.value;
      const c = colour.get(id) ?? WHITE;
      if (c === GREY) {
        const cycle = [...path.slice(path.lastIndexOf(id)), id];
        // Reported on the task whose prerequisite edge closes the cycle.
        problems.push({
          taskId: id,
          code: ProblemCode.CYCLE,
          message: `dependency cycle: ${cycle.map(q).join(" -> ")} (each task must finish before the next)`,
        });
      } else if (c === WHITE) {
        colour.set(id, GREY);
        path.push(id);
        iterators.push(successors(id)[Symbol.iterator]());
      }
    }
  }
  return problems;
}

function* concat<T>(a: Iterable<T>, b: Iterable<T>): IterableIterator<T> {
  yield* a;
  yield* b;
}

/** Whether `p` occurs in list[0..end). */
function listedBefore(list: readonly unknown[], end: number, p: string): boolean {
  for (let i = 0; i < end; i++) if (list[i] === p) return true;
  return false;
}

function malformed(taskId: string, message: string): Problem {
  return { taskId, code: ProblemCode.MALFORMED, message };
}

function q(value: unknown): string {
  return value === undefined ? "(none)" : JSON.stringify(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number") return String(value);
  return typeof value;
}
