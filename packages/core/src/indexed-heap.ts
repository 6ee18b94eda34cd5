/**
 * An indexed (addressable) 4-ary min-heap of integer handles.
 *
 * Order: a before b when keyOf(a) < keyOf(b), or the keys are equal and
 * less(a, b) (`less` breaks ties; it may compare the keys again).
 *
 * Invariants:
 *   - heap[0..size) holds distinct handles; for every i > 0, heap[i] is not
 *     before heap[parent(i)], parent(i) = (i - 1) >> 2.
 *   - position[h] is 1 + the index of h in heap, or 0 when h is not in it
 *     (0, not -1: growing needs no fill, and the slots of handles never
 *     pushed stay untouched zero pages).
 *   - keys[i] = keyOf(heap[i]): the caller changes a key only together with
 *     update(h) (or while h is out of the heap).
 *
 * Because every handle knows its position, remove(h) and update(h) are
 * O(log n): the entry is moved to its slot and sifted up *or* down, whichever
 * restores the order (a changed key may need either; sifting one way only is
 * the classic bug, cf. nodejs/node#24322). Nothing is deleted lazily, so no
 * garbage piles up inside the heap.
 *
 * Costs: push, pop, remove, update O(log n) (4-ary: log4 n levels, up to 4
 * comparisons per level going down); peek, has O(1).
 *
 * Entries are plain int32 handles into the caller's own arrays (structure
 * of arrays): no object per entry, no pointer chasing. Each slot also caches
 * its handle's key, so a sift reads the four children's keys side by side
 * instead of at four random places of the caller's arrays (at 10^6 entries
 * that is most of the cost of a pop). 16 bytes per handle: slot, key, position.
 *
 * Several heaps may share one position array (`HeapPositions`) when no
 * handle is ever in two of them at once (the engine's runnable heaps, one per
 * task type): then each handle costs its 4 position bytes once, not once per
 * heap, and `has(h)` says whether h is in any of them.
 */
import { grownCapacity } from "./growth.js";

/** The position array of one or more heaps that never hold the same handle at once. */
export class HeapPositions {
  array: Int32Array;

  constructor(capacity = 16) {
    this.array = new Int32Array(capacity);
  }

  /** Makes room for handles below `handles`, geometrically (growth.ts). */
  reserve(handles: number): void {
    if (handles <= this.array.length) return;
    const array = new Int32Array(grownCapacity(this.array.length, handles));
    array.set(this.array);
    this.array = array;
  }
}

export class IndexedHeap {
  private heap: Int32Array;
  private keys: Float64Array;
  private readonly slots: HeapPositions;
  private count = 0;

  constructor(
    private readonly less: (a: number, b: number) => boolean,
    capacity = 16,
    /** The primary key; without it every comparison goes to `less`. */
    private readonly keyOf: (handle: number) => number = () => 0,
    /** Positions shared with other heaps (see HeapPositions); default this heap's own. */
    positions?: HeapPositions,
  ) {
    this.heap = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.slots = positions ?? new HeapPositions(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Makes room for handles below `handles`. Grows geometrically (growth.ts), so reserving batch by batch stays O(1) amortized. */
  reserve(handles: number): void {
    this.slots.reserve(handles);
  }

  /** Whether `handle` is in this heap (or, with shared positions, in any heap sharing them). */
  has(handle: number): boolean {
    const position = this.slots.array;
    return handle < position.length && position[handle]! > 0;
  }

  /** The key of the least handle (as keyOf gave it when it last moved), or NaN when empty. */
  peekKey(): number {
    return this.count > 0 ? this.keys[0]! : Number.NaN;
  }

  /**
   * The keys of the `limit` least handles, ascending (all of them when fewer).
   * A best-first walk from the root that only ever looks at children of what
   * it took: O(limit · log limit), whatever the heap's size, and nothing in
   * the heap moves. (Ties among equal keys make no difference to the keys.)
   */
  leastKeys(limit: number): number[] {
    const out: number[] = [];
    if (this.count === 0 || limit <= 0) return out;
    // A binary min-heap of heap slots, by key: the frontier of the walk (at most 3·limit + 1 slots).
    const keys = this.keys;
    const open = new Int32Array(3 * Math.min(limit, this.count) + 4);
    let size = 1;
    open[0] = 0;
    while (size > 0 && out.length < limit) {
      const slot = open[0]!;
      out.push(keys[slot]!);
      // Take the root out: the last slot sifts down from the top.
      const last = open[--size]!;
      const lastKey = keys[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && keys[open[r]!]! < keys[open[l]!]! ? r : l;
        if (keys[open[c]!]! >= lastKey) break;
        open[i] = open[c]!;
        i = c;
      }
      if (size > 0) open[i] = last;
      // Its children in the 4-ary heap join the walk.
      const end = Math.min(4 * slot + 5, this.count);
      for (let child = 4 * slot + 1; child < end; child++) {
        const childKey = keys[child]!;
        let j = size++;
        while (j > 0) {
          const parent = (j - 1) >> 1;
          if (keys[open[parent]!]! <= childKey) break;
          open[j] = open[parent]!;
          j = parent;
        }
        open[j] = child;
      }
    }
    return out;
  }

  /** The least handle, or -1 when empty. */
  peek(): number {
    return this.count > 0 ? this.heap[0]! : -1;
  }

  push(handle: number): void {
    if (this.count === this.heap.length) {
      const heap = new Int32Array(grownCapacity(this.heap.length));
      heap.set(this.heap);
      this.heap = heap;
      const keys = new Float64Array(heap.length);
      keys.set(this.keys);
      this.keys = keys;
    }
    this.reserve(handle + 1);
    const i = this.count++;
    this.heap[i] = handle;
    this.keys[i] = this.keyOf(handle);
    this.slots.array[handle] = i + 1;
    this.siftUp(i);
  }

  /**
   * Replaces the contents with `handles` (distinct), ordered bottom-up
   * (Floyd): O(n), where n pushes cost up to O(n log n).
   */
  build(handles: ArrayLike<number>): void {
    for (let i = 0; i < this.count; i++) this.slots.array[this.heap[i]!] = 0;
    const n = handles.length;
    if (n > this.heap.length) {
      this.heap = new Int32Array(n);
      this.keys = new Float64Array(n);
    }
    let limit = 0;
    for (let i = 0; i < n; i++) limit = Math.max(limit, handles[i]! + 1);
    this.reserve(limit);
    const position = this.slots.array;
    for (let i = 0; i < n; i++) {
      const handle = handles[i]!;
      this.heap[i] = handle;
      this.keys[i] = this.keyOf(handle);
      position[handle] = i + 1;
    }
    this.count = n;
    for (let i = (n - 2) >> 2; i >= 0; i--) this.siftDown(i);
  }

  /** Removes and returns the least handle, or -1 when empty. */
  pop(): number {
    if (this.count === 0) return -1;
    const top = this.heap[0]!;
    this.removeAt(0);
    return top;
  }

  /** Removes `handle` if present; returns whether it was. */
  remove(handle: number): boolean {
    if (!this.has(handle)) return false;
    this.removeAt(this.slots.array[handle]! - 1);
    return true;
  }

  /** Restores the order after `handle`'s key changed (either way). */
  update(handle: number): void {
    const i = this.slots.array[handle]! - 1;
    this.keys[i] = this.keyOf(handle);
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Handles in heap order (not sorted); for snapshots and checks. */
  *handles(): IterableIterator<number> {
    for (let i = 0; i < this.count; i++) yield this.heap[i]!;
  }

  private removeAt(i: number): void {
    const position = this.slots.array;
    const handle = this.heap[i]!;
    position[handle] = 0;
    const last = this.heap[--this.count]!;
    if (i === this.count) return;
    this.heap[i] = last;
    this.keys[i] = this.keys[this.count]!;
    position[last] = i + 1;
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Returns whether the entry moved. */
  private siftUp(i: number): boolean {
    const heap = this.heap;
    const keys = this.keys;
    const position = this.slots.array;
    const handle = heap[i]!;
    const key = keys[i]!;
    const start = i;
    while (i > 0) {
      const parent = (i - 1) >> 2;
      const p = heap[parent]!;
      const pk = keys[parent]!;
      if (!(key < pk || (key === pk && this.less(handle, p)))) break;
      heap[i] = p;
      keys[i] = pk;
      position[p] = i + 1;
      i = parent;
    }
    heap[i] = handle;
    keys[i] = key;
    position[handle] = i + 1;
    return i !== start;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const keys = this.keys;
    const position = this.slots.array;
    const n = this.count;
    const handle = heap[i]!;
    const key = keys[i]!;
    for (;;) {
      const first = (i << 2) + 1;
      if (first >= n) break;
      let best = first;
      let bestHandle = heap[first]!;
      let bestKey = keys[first]!;
      const end = Math.min(first + 4, n);
      for (let c = first + 1; c < end; c++) {
        const ck = keys[c]!;
        if (ck < bestKey || (ck === bestKey && this.less(heap[c]!, bestHandle))) {
          best = c;
          bestHandle = heap[c]!;
          bestKey = ck;
        }
      }
      if (!(bestKey < key || (bestKey === key && this.less(bestHandle, handle)))) break;
      heap[i] = bestHandle;
      keys[i] = bestKey;
      position[bestHandle] = i + 1;
      i = best;
    }
    heap[i] = handle;
    keys[i] = key;
    position[handle] = i + 1;
  }
}
