/**
 * Structure-of-arrays storage for tasks, addressed by integer handles.
 *
 * Each task occupies one slot across a set of typed arrays (numbers) and a few
 * plain arrays (strings, lists, payloads). Handles of dropped tasks are reused
 * through a free list, so memory follows the live population, not history.
 * Typed arrays grow by 1.5x; their slack is part of the reported
 * bytes-per-task figure.
 *
 * Invariant: `handleOf.get(ids[h]) === h` for every live handle h, and a free
 * handle is in no other structure (heaps, lists, dependents).
 */
export const Flag = {
  HARD_DEADLINE: 1,
  CONTINUE_ON_PREREQUISITE_FAILURE: 2,
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

export function isTerminal(state: number): boolean {
  return state >= S.COMPLETED;
}

export class TaskTable {
  readonly handleOf = new Map<string, number>();
  private free: number[] = [];
  private capacity = 0;
  /** Slots ever used (live + free). */
  private high = 0;

  // Plain arrays: kept packed (grown by push) so V8 stores them densely.
  ids: string[] = [];
  prerequisites: (readonly string[])[] = [];
  workflowId: (string | undefined)[] = [];
  payload: unknown[] = [];
  owner: (string | undefined)[] = [];
  reason: (string | undefined)[] = [];

  // Typed arrays.
  deadline = new Float64Array(0);
  /** Ordering key in the runnable heap: deadline, or earlier under the starvation guard. */
  key = new Float64Array(0);
  /** When the task's pending timer fires (lease expiry, retry, hard deadline, retention). */
  timerAt = new Float64Array(0);
  /** RUNNABLE: since when. Terminal: when it finished. */
  stamp = new Float64Array(0);
  token = new Float64Array(0);
  unmet = new Int32Array(0);
  attempts = new Int32Array(0);
  maxAttempts = new Uint16Array(0);
  state = new Uint8Array(0);
  flags = new Uint8Array(0);
  /** Doubly linked FIFO of RUNNABLE tasks by runnableSince (oldest at head); -1 ends. */
  prev = new Int32Array(0);
  next = new Int32Array(0);

  /**
   * Dependents: for each handle, a singly linked list (in insertion order) of
   * the handles listing it as a prerequisite, kept in one shared pool of
   * edges — 8 bytes an edge and no object per task, where an array per task
   * costs ~50 bytes before its first element and is one more object for every
   * GC to walk. Iterate: for (e = depHead[h]; e >= 0; e = edgeNext[e]) edgeTo[e].
   */
  depHead = new Int32Array(0);
  depTail = new Int32Array(0);
  edgeTo = new Int32Array(0);
  edgeNext = new Int32Array(0);
  /** Head of the free list of edges (linked through edgeNext); -1 when empty. */
  private edgeFree = -1;
  /** Edges ever used (live + free). */
  private edgeHigh = 0;

  get size(): number {
    return this.handleOf.size;
  }

  get handleLimit(): number {
    return this.high;
  }

  allocate(id: string): number {
    let h = this.free.pop();
    if (h === undefined) {
      h = this.high++;
      if (h >= this.capacity) this.grow(Math.max(16, Math.ceil(this.capacity * 1.5)));
      this.ids.push(id);
      this.prerequisites.push([]);
      this.workflowId.push(undefined);
      this.payload.push(undefined);
      this.owner.push(undefined);
      this.reason.push(undefined);
    } else {
      this.ids[h] = id;
    }
    this.handleOf.set(id, h);
    this.prev[h] = -1;
    this.next[h] = -1;
    this.depHead[h] = -1;
    this.depTail[h] = -1;
    return h;
  }

  release(h: number): void {
    this.handleOf.delete(this.ids[h]!);
    this.ids[h] = "";
    this.prerequisites[h] = [];
    this.workflowId[h] = undefined;
    this.payload[h] = undefined;
    this.owner[h] = undefined;
    this.reason[h] = undefined;
    this.clearDependents(h);
    this.deadline[h] = 0;
    this.key[h] = 0;
    this.timerAt[h] = 0;
    this.stamp[h] = 0;
    this.token[h] = 0;
    this.unmet[h] = 0;
    this.attempts[h] = 0;
    this.maxAttempts[h] = 0;
    this.state[h] = 0;
    this.flags[h] = 0;
    this.free.push(h);
  }

  hasDependents(h: number): boolean {
    return this.depHead[h]! >= 0;
  }

  /** Appends `d` to the dependents of `p`. O(1) amortized. */
  addDependent(p: number, d: number): void {
    let e = this.edgeFree;
    if (e >= 0) {
      this.edgeFree = this.edgeNext[e]!;
    } else {
      e = this.edgeHigh++;
      if (e >= this.edgeTo.length) {
        const capacity = Math.max(16, Math.ceil(this.edgeTo.length * 1.5));
        this.edgeTo = copy(new Int32Array(capacity), this.edgeTo);
        this.edgeNext = copy(new Int32Array(capacity), this.edgeNext);
      }
    }
    this.edgeTo[e] = d;
    this.edgeNext[e] = -1;
    const tail = this.depTail[p]!;
    if (tail >= 0) this.edgeNext[tail] = e;
    else this.depHead[p] = e;
    this.depTail[p] = e;
  }

  /** Removes `d` from the dependents of `p`, if there. O(dependents of p). */
  removeDependent(p: number, d: number): void {
    let before = -1;
    for (let e = this.depHead[p]!; e >= 0; before = e, e = this.edgeNext[e]!) {
      if (this.edgeTo[e] !== d) continue;
      const after = this.edgeNext[e]!;
      if (before >= 0) this.edgeNext[before] = after;
      else this.depHead[p] = after;
      if (this.depTail[p] === e) this.depTail[p] = before;
      this.freeEdge(e);
      return;
    }
  }

  /** Removes the first dependent of `p`. */
  shiftDependent(p: number): void {
    const e = this.depHead[p]!;
    if (e < 0) return;
    const after = this.edgeNext[e]!;
    this.depHead[p] = after;
    if (after < 0) this.depTail[p] = -1;
    this.freeEdge(e);
  }

  clearDependents(p: number): void {
    for (let e = this.depHead[p]!; e >= 0; ) {
      const after = this.edgeNext[e]!;
      this.freeEdge(e);
      e = after;
    }
    this.depHead[p] = -1;
    this.depTail[p] = -1;
  }

  private freeEdge(e: number): void {
    this.edgeTo[e] = -1;
    this.edgeNext[e] = this.edgeFree;
    this.edgeFree = e;
  }

  /** Live handles, in slot order. */
  *live(): IterableIterator<number> {
    for (const h of this.handleOf.values()) yield h;
  }

  private grow(capacity: number): void {
    const f64 = (a: Float64Array) => copy(new Float64Array(capacity), a);
    this.deadline = f64(this.deadline);
    this.key = f64(this.key);
    this.timerAt = f64(this.timerAt);
    this.stamp = f64(this.stamp);
    this.token = f64(this.token);
    this.unmet = copy(new Int32Array(capacity), this.unmet);
    this.attempts = copy(new Int32Array(capacity), this.attempts);
    this.maxAttempts = copy(new Uint16Array(capacity), this.maxAttempts);
    this.state = copy(new Uint8Array(capacity), this.state);
    this.flags = copy(new Uint8Array(capacity), this.flags);
    this.prev = copy(new Int32Array(capacity), this.prev);
    this.next = copy(new Int32Array(capacity), this.next);
    this.depHead = copy(new Int32Array(capacity), this.depHead);
    this.depTail = copy(new Int32Array(capacity), this.depTail);
    this.capacity = capacity;
  }
}

function copy<T extends { set(a: ArrayLike<number>): void }>(to: T, from: ArrayLike<number>): T {
  to.set(from);
  return to;
}
