/**
 * The task types an engine holds, each named by a small integer code (what
 * the task table stores per task, 2 bytes) and given its own runnable heap.
 *
 * Invariants:
 *   - code 0 is DEFAULT_TASK_TYPE, always registered;
 *   - a code is registered while at least one held task (live or terminal,
 *     until dropped) has that type: `held[code]` counts them, and a code
 *     whose count reaches 0 is released and reused by the next new type, so
 *     the registry is bounded by the tasks held, not by every type ever seen;
 *   - every registered code has a heap; the heaps share one position array
 *     (a task is in at most one of them: its own type's, while RUNNABLE);
 *   - `leased[code]` counts the type's LEASED tasks (kept by the engine's
 *     one state-changing function).
 *
 * Costs: `code(name)` O(1) (a Map lookup); `release` O(1).
 */
import { HeapPositions, type IndexedHeap } from "./indexed-heap.js";
import { DEFAULT_TASK_TYPE } from "./types.js";

/** Most task types one engine holds at once (codes are 16-bit). */
export const MAX_TASK_TYPES_HELD = 65_536;

export class TaskTypes {
  private readonly codes = new Map<string, number>([[DEFAULT_TASK_TYPE, 0]]);
  /** Names by code; "" for a released code. */
  readonly names: string[] = [DEFAULT_TASK_TYPE];
  /** Runnable heaps by code. */
  readonly heaps: IndexedHeap[];
  /** Tasks held per code. */
  readonly held: number[] = [0];
  /** LEASED tasks per code. */
  readonly leased: number[] = [0];
  private readonly free: number[] = [];
  readonly positions = new HeapPositions();

  constructor(private readonly newHeap: (positions: HeapPositions) => IndexedHeap) {
    this.heaps = [newHeap(this.positions)];
  }

  /** Types registered now (the default one included). */
  get size(): number {
    return this.codes.size;
  }

  /** The code of `name`, or -1 when no held task has that type. */
  find(name: string): number {
    return this.codes.get(name) ?? -1;
  }

  /** The code of `name`, registered if new. The caller checks MAX_TASK_TYPES_HELD first. */
  code(name: string | undefined): number {
    if (name === undefined) return 0;
    const known = this.codes.get(name);
    if (known !== undefined) return known;
    const code = this.free.pop() ?? this.names.length;
    this.codes.set(name, code);
    if (code === this.names.length) {
      this.names.push(name);
      this.heaps.push(this.newHeap(this.positions));
      this.held.push(0);
      this.leased.push(0);
    } else this.names[code] = name;
    return code;
  }

  /** One more held task of `code`. */
  hold(code: number): void {
    this.held[code]!++;
  }

  /** One fewer held task of `code`; the last one of a type other than the default releases its code. */
  release(code: number): void {
    if (--this.held[code]! > 0 || code === 0) return;
    this.codes.delete(this.names[code]!);
    this.names[code] = "";
    this.leased[code] = 0;
    this.free.push(code);
  }

  /** The registered codes (released ones skipped). */
  *registered(): IterableIterator<number> {
    for (let code = 0; code < this.names.length; code++) if (this.names[code] !== "") yield code;
  }
}
