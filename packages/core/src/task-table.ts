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
  /** Handles of tasks listing this one as a prerequisite; undefined when none. */
  dependents: (number[] | undefined)[] = [];

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
      this.dependents.push(undefined);
    } else {
      this.ids[h] = id;
    }
    this.handleOf.set(id, h);
    this.prev[h] = -1;
    this.next[h] = -1;
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
    this.dependents[h] = undefined;
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
    this.capacity = capacity;
  }
}

function copy<T extends { set(a: ArrayLike<number>): void }>(to: T, from: ArrayLike<number>): T {
  to.set(from);
  return to;
}
