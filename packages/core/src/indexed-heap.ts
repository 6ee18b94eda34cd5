/**
 * An indexed (addressable) 4-ary min-heap of integer handles.
 *
 * Invariants:
 *   - heap[0..size) holds distinct handles; for every i > 0,
 *     !less(heap[i], heap[parent(i)]), parent(i) = (i - 1) >> 2.
 *   - position[h] is the index of h in heap, or -1 when h is not in it.
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
 * The comparator reads the keys from the caller's own arrays (structure of
 * arrays), so entries are plain int32s: no object per entry, no pointer
 * chasing, and the heap costs 8 bytes per handle (heap slot + position).
 */
export class IndexedHeap {
  private heap: Int32Array;
  private position: Int32Array;
  private count = 0;

  constructor(
    private readonly less: (a: number, b: number) => boolean,
    capacity = 16,
  ) {
    this.heap = new Int32Array(capacity);
    this.position = new Int32Array(capacity).fill(-1);
  }

  get size(): number {
    return this.count;
  }

  /** Makes room for handles below `handles`. */
  reserve(handles: number): void {
    if (handles <= this.position.length) return;
    const position = new Int32Array(handles).fill(-1);
    position.set(this.position);
    this.position = position;
  }

  has(handle: number): boolean {
    return handle < this.position.length && this.position[handle]! >= 0;
  }

  /** The least handle, or -1 when empty. */
  peek(): number {
    return this.count > 0 ? this.heap[0]! : -1;
  }

  push(handle: number): void {
    if (this.count === this.heap.length) {
      const heap = new Int32Array(Math.max(16, this.heap.length * 2));
      heap.set(this.heap);
      this.heap = heap;
    }
    this.reserve(handle + 1);
    const i = this.count++;
    this.heap[i] = handle;
    this.position[handle] = i;
    this.siftUp(i);
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
    this.removeAt(this.position[handle]!);
    return true;
  }

  /** Restores the order after `handle`'s key changed (either way). */
  update(handle: number): void {
    const i = this.position[handle]!;
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Handles in heap order (not sorted); for snapshots and checks. */
  *handles(): IterableIterator<number> {
    for (let i = 0; i < this.count; i++) yield this.heap[i]!;
  }

  private removeAt(i: number): void {
    const handle = this.heap[i]!;
    this.position[handle] = -1;
    const last = this.heap[--this.count]!;
    if (i === this.count) return;
    this.heap[i] = last;
    this.position[last] = i;
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Returns whether the entry moved. */
  private siftUp(i: number): boolean {
    const heap = this.heap;
    const handle = heap[i]!;
    const start = i;
    while (i > 0) {
      const parent = (i - 1) >> 2;
      const p = heap[parent]!;
      if (!this.less(handle, p)) break;
      heap[i] = p;
      this.position[p] = i;
      i = parent;
    }
    heap[i] = handle;
    this.position[handle] = i;
    return i !== start;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.count;
    const handle = heap[i]!;
    for (;;) {
      const first = (i << 2) + 1;
      if (first >= n) break;
      let best = first;
      let bestHandle = heap[first]!;
      const end = Math.min(first + 4, n);
      for (let c = first + 1; c < end; c++) {
        const h = heap[c]!;
        if (this.less(h, bestHandle)) {
          best = c;
          bestHandle = h;
        }
      }
      if (!this.less(bestHandle, handle)) break;
      heap[i] = bestHandle;
      this.position[bestHandle] = i;
      i = best;
    }
    heap[i] = handle;
    this.position[handle] = i;
  }
}
