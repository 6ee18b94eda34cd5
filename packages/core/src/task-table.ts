/**
 * Structure-of-arrays storage for tasks, addressed by integer handles.
 *
 * Each task occupies one slot across a set of typed arrays (numbers) and a few
 * plain arrays (strings, lists, payloads). Handles of dropped tasks are reused
 * through a free list, so memory follows the live population, not history.
 * Every per-handle array grows at once, by grownCapacity (growth.ts:
 * doubling up to 2^20 handles, then by half). The slack is part of the
 * reported bytes-per-task figure.
 *
 * Invariant: `index.get(ids[h]) === h` for every live handle h; a free handle
 * has the id "" (ids are never empty) and is in no other structure (index,
 * heaps, lists, dependents).
 */
import { grownCapacity } from "./growth.js";
import { IdIndex } from "./id-index.js";

export const Flag = {
  HARD_DEADLINE: 1,
  CONTINUE_ON_PREREQUISITE_FAILURE: 2,
  /**
   * RUNNABLE because its last prerequisite ended (not on submit, a retry or
   * a lease expiry); cleared when leased. For the observer's dispatch
   * latency only: not part of the spec, not journaled.
   */
  UNBLOCKED: 4,
  /** The spec has a notBefore (kept in `notBefore`). */
  NOT_BEFORE: 8,
  /**
   * The lease under the task's token was handed back by its holder
   * (`Scheduler.release`) and none was granted since: status, not spec
   * (TaskStatus.released, journaled); cleared by the next grant.
   */
  RELEASED: 16,
  /** The spec's `large`: placed by (workflowId, id); prerequisites in other partitions are remote. */
  LARGE: 32,
} as const;

/** Numeric state codes; index into STATE_NAMES. */
export const S = {
  WAITING: 0,
  RUNNABLE: 1,
  LEASED: 2,
  COMPLETED: 3,
  FAILED: 4,
  CANCELLED: 5,
  EXPIRED: 6,
} as const;
export type S = (typeof S)[keyof typeof S];

export const STATE_NAMES = [
  "WAITING",
  "RUNNABLE",
  "LEASED",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "EXPIRED",
] as const;

/**
 * The task state machine as data: the states each state may move to. Every
 * transition goes through `Scheduler.setState`, which asserts it against
 * this table (one byte read). Drawn in the package README ("States"), which a
 * test holds to this table.
 */
export const TRANSITIONS: { readonly [From in keyof typeof S]: readonly (keyof typeof S)[] } = {
  // All prerequisites met, or a retry's backoff over (and its notBefore reached); its hard deadline passed (waiting, or in a
  // retry's backoff); cancelled, or a prerequisite ended badly.
  WAITING: ["RUNNABLE", "EXPIRED", "CANCELLED"],
  // Leased (or consumed); its hard deadline passed; cancelled.
  RUNNABLE: ["LEASED", "EXPIRED", "CANCELLED"],
  // Completed; failed or timed out (timeoutMs) with attempts left (backoff); expired with attempts
  // left, or released by its holder (the attempt not spent); failed for good; cancelled.
  LEASED: ["COMPLETED", "WAITING", "RUNNABLE", "FAILED", "CANCELLED"],
  COMPLETED: [],
  // An operator's retry (Scheduler.retry): from the start, RUNNABLE, or WAITING on live prerequisites.
  FAILED: ["RUNNABLE", "WAITING"],
  CANCELLED: ["RUNNABLE", "WAITING"],
  EXPIRED: ["RUNNABLE", "WAITING"],
};

const STATE_COUNT = STATE_NAMES.length;
const ALLOWED = new Uint8Array(STATE_COUNT * STATE_COUNT);
for (const [from, targets] of Object.entries(TRANSITIONS)) {
  for (const to of targets) ALLOWED[S[from as keyof typeof S] * STATE_COUNT + S[to]] = 1;
}

/** Whether the state machine lets a task move from `from` to `to`. */
export function canTransition(from: S, to: S): boolean {
  return ALLOWED[from * STATE_COUNT + to] === 1;
}

const NONE: readonly string[] = Object.freeze([]);

export function isTerminal(state: number): boolean {
  return state >= S.COMPLETED;
}

export class TaskTable {
  private free: number[] = [];
  private capacity = 0;
  /** Slots ever used (live + free). */
  private high = 0;

  // Plain arrays, indexed by handle, lengthened with the typed arrays (V8
  // keeps them dense, holes above `high`); stores go by index, never push.
  readonly ids: string[] = [];
  /** id → handle. */
  readonly index = new IdIndex(this.ids);
  prerequisites: (readonly string[])[] = [];
  workflowId: (string | undefined)[] = [];
  payload: unknown[] = [];
  owner: (string | undefined)[] = [];
  reason: (string | undefined)[] = [];
  /** A COMPLETED task's result (TaskStatus.result). */
  result: unknown[] = [];

  // Typed arrays.
  deadline = new Float64Array(0);
  /** The spec's notBefore, when Flag.NOT_BEFORE is set. */
  notBefore = new Float64Array(0);
  /** The spec's run time limit per attempt; 0 for none (a limit is at least 1). */
  timeoutMs = new Uint32Array(0);
  /** When the task's pending timer fires (lease expiry, retry, hard deadline, retention). */
  timerAt = new Float64Array(0);
  /**
   * RUNNABLE: since when. LEASED: when the lease was granted (NaN for a
   * lease restored from a journal). Terminal: when it finished.
   */
  stamp = new Float64Array(0);
  token = new Float64Array(0);
  unmet = new Int32Array(0);
  attempts = new Int32Array(0);
  maxAttempts = new Uint16Array(0);
  /** What the payload counts for (SchedulerOptions.measurePayload), kept to subtract when the task is dropped. */
  payloadBytes = new Uint32Array(0);
  /** What the result counts for (measured as payloads are), kept to subtract when the task is dropped. */
  resultBytes = new Uint32Array(0);
  state = new Uint8Array(0);
  flags = new Uint8Array(0);
  /** The task's type, as its code in the engine's TaskTypes (0: the default type). */
  typeCode = new Uint16Array(0);
  /**
   * Doubly linked FIFO of RUNNABLE tasks by runnableSince (oldest at head):
   * [2h] the previous task, [2h + 1] the next; -1 ends. Side by side, as they
   * are read together: one cache miss for a task, not two.
   */
  fifo = new Int32Array(0);

  // Dependents: for each handle, a singly linked list (in insertion order) of
  // the handles listing it as a prerequisite, kept in one shared pool of
  // edges — 8 bytes an edge and no object per task, where an array per task
  // costs ~50 bytes before its first element and is one more object for every
  // GC to walk. Iterate:
  //   for (let e = t.firstEdge(h); e >= 0; e = t.nextEdge(e)) t.edgeTarget(e)
  // Pairs that are read together sit side by side, as in `fifo`.

  /** [2h] first edge of h's list, [2h + 1] last; -1 when empty. */
  private dep = new Int32Array(0);
  /** [2e] the dependent, [2e + 1] the next edge of the list (-1 ends it). */
  private edges = new Int32Array(0);
  /** Head of the free list of edges (linked through their next); -1 when empty. */
  private edgeFree = -1;
  /** Edges ever used (live + free). */
  private edgeHigh = 0;

  get size(): number {
    return this.index.size;
  }

  get handleLimit(): number {
    return this.high;
  }

  /** The handle of `id`, or -1. */
  handleOf(id: string): number {
    return this.index.get(id);
  }

  /** Makes room for `n` tasks in one step (restore knows its count). */
  reserve(n: number): void {
    if (n > this.capacity) this.grow(n);
    this.index.reserve(n);
  }

  /**
   * Restore's bulk path: a new handle at the end for `id`, not yet in the
   * index (the invariant holds again after indexFrom). No free handles may
   * exist (a new table).
   */
  append(id: string): number {
    const h = this.high++;
    if (h >= this.capacity) this.grow(grownCapacity(this.capacity));
    this.ids[h] = id;
    this.clearFields(h);
    this.unlink(h);
    return h;
  }

  /**
   * Indexes the handles from `first` on, added by append. Returns a handle
   * whose id another handle has too (then the table is unusable), or -1.
   * `distinct`: the caller knows the ids are distinct (no check).
   */
  indexFrom(first: number, distinct: boolean): number {
    return this.index.addAll(first, this.high, !distinct);
  }

  /**
   * A new handle for `id`, which must not be live already. `indexed` false:
   * the caller indexes it (IdIndex.addMany, for a batch), before any lookup.
   */
  allocate(id: string, indexed = true): number {
    let h = this.free.pop();
    if (h === undefined) {
      h = this.high++;
      if (h >= this.capacity) this.grow(grownCapacity(this.capacity));
      this.clearFields(h);
    }
    this.ids[h] = id;
    if (indexed) this.index.add(id, h);
    this.unlink(h);
    return h;
  }

  /** A fresh or released handle's object fields, as for a new task. */
  private clearFields(h: number): void {
    this.prerequisites[h] = NONE;
    this.workflowId[h] = undefined;
    this.payload[h] = undefined;
    this.owner[h] = undefined;
    this.reason[h] = undefined;
    this.result[h] = undefined;
  }

  /** Out of the FIFO, no dependents: a new handle's links. */
  private unlink(h: number): void {
    this.fifo[2 * h] = -1;
    this.fifo[2 * h + 1] = -1;
    this.dep[2 * h] = -1;
    this.dep[2 * h + 1] = -1;
  }

  release(h: number): void {
    this.index.delete(this.ids[h]!, h);
    this.ids[h] = "";
    this.clearFields(h);
    this.clearDependents(h);
    this.deadline[h] = 0;
    this.notBefore[h] = 0;
    this.timeoutMs[h] = 0;
    this.timerAt[h] = 0;
    this.stamp[h] = 0;
    this.token[h] = 0;
    this.unmet[h] = 0;
    this.attempts[h] = 0;
    this.maxAttempts[h] = 0;
    this.payloadBytes[h] = 0;
    this.resultBytes[h] = 0;
    this.state[h] = 0;
    this.flags[h] = 0;
    this.typeCode[h] = 0;
    this.free.push(h);
  }

  hasDependents(h: number): boolean {
    return this.dep[2 * h]! >= 0;
  }

  /** The first edge of h's dependents, or -1. */
  firstEdge(h: number): number {
    return this.dep[2 * h]!;
  }

  /** The edge after `e` in its list, or -1. */
  nextEdge(e: number): number {
    return this.edges[2 * e + 1]!;
  }

  /** The dependent edge `e` leads to. */
  edgeTarget(e: number): number {
    return this.edges[2 * e]!;
  }

  /** Appends `d` to the dependents of `p`. O(1) amortized. */
  addDependent(p: number, d: number): void {
    let e = this.edgeFree;
    if (e >= 0) {
      this.edgeFree = this.edges[2 * e + 1]!;
    } else {
      e = this.edgeHigh++;
      if (2 * e >= this.edges.length)
        this.edges = copy(new Int32Array(2 * grownCapacity(this.edges.length / 2)), this.edges);
    }
    const edges = this.edges;
    edges[2 * e] = d;
    edges[2 * e + 1] = -1;
    const tail = this.dep[2 * p + 1]!;
    if (tail >= 0) edges[2 * tail + 1] = e;
    else this.dep[2 * p] = e;
    this.dep[2 * p + 1] = e;
  }

  /** Removes `d` from the dependents of `p`, if there. O(dependents of p). */
  removeDependent(p: number, d: number): void {
    const edges = this.edges;
    let before = -1;
    for (let e = this.dep[2 * p]!; e >= 0; before = e, e = edges[2 * e + 1]!) {
      if (edges[2 * e] !== d) continue;
      const after = edges[2 * e + 1]!;
      if (before >= 0) edges[2 * before + 1] = after;
      else this.dep[2 * p] = after;
      if (this.dep[2 * p + 1] === e) this.dep[2 * p + 1] = before;
      this.freeEdge(e);
      return;
    }
  }

  /** Removes the first dependent of `p`. */
  shiftDependent(p: number): void {
    const e = this.dep[2 * p]!;
    if (e < 0) return;
    const after = this.edges[2 * e + 1]!;
    this.dep[2 * p] = after;
    if (after < 0) this.dep[2 * p + 1] = -1;
    this.freeEdge(e);
  }

  clearDependents(p: number): void {
    for (let e = this.dep[2 * p]!; e >= 0; ) {
      const after = this.edges[2 * e + 1]!;
      this.freeEdge(e);
      e = after;
    }
    this.dep[2 * p] = -1;
    this.dep[2 * p + 1] = -1;
  }

  private freeEdge(e: number): void {
    this.edges[2 * e] = -1;
    this.edges[2 * e + 1] = this.edgeFree;
    this.edgeFree = e;
  }

  /** Live handles, in handle order. O(handles ever used). */
  *live(): IterableIterator<number> {
    for (let h = 0; h < this.high; h++) if (this.ids[h] !== "") yield h;
  }

  private grow(capacity: number): void {
    for (const list of [
      this.ids,
      this.prerequisites,
      this.workflowId,
      this.payload,
      this.owner,
      this.reason,
      this.result,
    ])
      list.length = capacity;
    const f64 = (a: Float64Array) => copy(new Float64Array(capacity), a);
    this.deadline = f64(this.deadline);
    this.notBefore = f64(this.notBefore);
    this.timeoutMs = copy(new Uint32Array(capacity), this.timeoutMs);
    this.timerAt = f64(this.timerAt);
    this.stamp = f64(this.stamp);
    this.token = f64(this.token);
    this.unmet = copy(new Int32Array(capacity), this.unmet);
    this.attempts = copy(new Int32Array(capacity), this.attempts);
    this.maxAttempts = copy(new Uint16Array(capacity), this.maxAttempts);
    this.payloadBytes = copy(new Uint32Array(capacity), this.payloadBytes);
    this.resultBytes = copy(new Uint32Array(capacity), this.resultBytes);
    this.state = copy(new Uint8Array(capacity), this.state);
    this.flags = copy(new Uint8Array(capacity), this.flags);
    this.typeCode = copy(new Uint16Array(capacity), this.typeCode);
    this.fifo = copy(new Int32Array(2 * capacity), this.fifo);
    this.dep = copy(new Int32Array(2 * capacity), this.dep);
    this.capacity = capacity;
  }
}

function copy<T extends { set(a: ArrayLike<number>): void }>(to: T, from: ArrayLike<number>): T {
  to.set(from);
  return to;
}
