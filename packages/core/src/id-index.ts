/**
 * The task table's id → handle index: an open-addressing hash table (linear
 * probing) over one Int32Array of (hash, handle + 1) pairs. The id strings
 * stay in the table's `ids` array; the index holds no object of its own.
 *
 * Why not a `Map<string, number>`: at 10^6 entries a Map costs 30–60 bytes
 * an entry on the JS heap (every major GC walks them) and three or so cache
 * misses an access (bucket, entry, key). Here an access reads the slot pair
 * (one miss); only when the stored hash matches does it compare the id in
 * `ids` (a hit needs that read anyway). A miss — the duplicate check of
 * every new id — usually ends at the first slot. 8 bytes a slot, at most
 * half the slots used: 16–32 bytes a task, in an ArrayBuffer.
 *
 * Invariants (`n` = size, `cap` = slots, a power of two):
 *   - slot i is empty iff pairs[2i + 1] === 0; else it holds (hashId(id),
 *     h + 1) where ids[h] === id, and no other slot holds h.
 *   - an entry sits at its home slot (hash & (cap - 1)) or after it, with no
 *     empty slot in between (deletion shifts later entries back to keep this;
 *     there are no tombstones, so lookups never slow down with churn).
 *   - n <= cap / 2.
 *
 * Costs: get, has, add, delete O(1) expected (O(id length) to hash);
 * growing rehashes from the stored hashes, without touching the strings.
 */
export class IdIndex {
  private pairs: Int32Array;
  private mask: number;
  private count = 0;
  /** getMany's hashes. */
  private scratch = new Int32Array(0);

  constructor(
    /** The table's id of each handle (read only here). */
    private readonly ids: readonly string[],
    capacity = 16,
  ) {
    const slots = slotsFor(capacity);
    this.pairs = new Int32Array(2 * slots);
    this.mask = slots - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The handle of `id`, or -1. */
  get(id: string): number {
    const hash = hashId(id);
    const pairs = this.pairs;
    const mask = this.mask;
    const ids = this.ids;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const stored = pairs[2 * i + 1]!;
      if (stored === 0) return -1;
      if (pairs[2 * i] === hash && ids[stored - 1] === id) return stored - 1;
    }
  }

  has(id: string): boolean {
    return this.get(id) >= 0;
  }

  /**
   * out[i] = get(ids[i]) for every i, several times faster at 10^6 entries
   * (measured ~3x): a lookup is a chain of dependent cache misses (the slot,
   * then the stored id, then its characters), and one at a time they add
   * up; here each step is one pass over all the ids, so the misses of
   * different ids overlap. A stored hash equal to the id's but with another
   * id (a collision) falls back to get.
   */
  getMany(ids: readonly string[], out: Int32Array): void {
    const n = ids.length;
    if (this.scratch.length < n) this.scratch = new Int32Array(Math.max(n, 2 * this.scratch.length));
    const hashes = this.scratch;
    for (let i = 0; i < n; i++) hashes[i] = hashId(ids[i]!);
    const pairs = this.pairs;
    const mask = this.mask;
    for (let i = 0; i < n; i++) {
      const hash = hashes[i]!;
      let found = -1;
      for (let j = hash & mask; ; j = (j + 1) & mask) {
        const stored = pairs[2 * j + 1]!;
        if (stored === 0) break;
        if (pairs[2 * j] === hash) {
          found = stored - 1;
          break;
        }
      }
      out[i] = found;
    }
    for (let i = 0; i < n; i++) {
      const h = out[i]!;
      if (h >= 0 && this.ids[h] !== ids[i]) out[i] = this.get(ids[i]!);
    }
  }

  /** Indexes handle `h` under `id` (= ids[h]). The id must not be indexed already. */
  add(id: string, h: number): void {
    if (2 * (this.count + 1) > this.mask + 1) this.rehash(2 * (this.mask + 1));
    this.place(hashId(id), h + 1);
    this.count++;
  }

  /**
   * add(ids[h], h) for each of `handles` (ids not indexed yet), with the
   * misses of different entries overlapping, as in getMany.
   */
  addMany(handles: Int32Array): void {
    const n = handles.length;
    this.reserve(this.count + n);
    if (this.scratch.length < n) this.scratch = new Int32Array(Math.max(n, 2 * this.scratch.length));
    const hashes = this.scratch;
    for (let i = 0; i < n; i++) hashes[i] = hashId(this.ids[handles[i]!]!);
    for (let i = 0; i < n; i++) this.place(hashes[i]!, handles[i]! + 1);
    this.count += n;
  }

  /**
   * Indexes handles from..to-1 under their ids, as add() would one by one,
   * but in slot order: every hash is computed first (a sequential pass),
   * then the entries are bucketed by home slot (a counting sort on its high
   * bits) and placed bucket by bucket, so the writes sweep the table instead
   * of each landing on a random cache line — at 10^6 entries, one cache miss
   * an entry was most of a restore's indexing time. With `checkDuplicates`,
   * returns the first handle found whose id is already indexed (then the
   * index is unusable), else -1; without, the ids must be distinct.
   */
  addAll(from: number, to: number, checkDuplicates: boolean): number {
    const count = to - from;
    if (count <= 0) return -1;
    this.reserve(this.count + count);
    const hashes = new Int32Array(count);
    for (let i = 0; i < count; i++) hashes[i] = hashId(this.ids[from + i]!);
    const slotBits = 31 - Math.clz32(this.mask + 1);
    const bucketBits = Math.min(slotBits, 12);
    const shift = slotBits - bucketBits;
    const mask = this.mask;
    const next = new Int32Array((1 << bucketBits) + 1);
    for (let i = 0; i < count; i++) next[((hashes[i]! & mask) >>> shift) + 1]!++;
    for (let b = 1; b < next.length; b++) next[b]! += next[b - 1]!;
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[next[(hashes[i]! & mask) >>> shift]!++] = i;
    for (let k = 0; k < count; k++) {
      const i = order[k]!;
      if (checkDuplicates && this.get(this.ids[from + i]!) >= 0) return from + i;
      this.place(hashes[i]!, from + i + 1);
      this.count++;
    }
    return -1;
  }

  /** Removes handle `h`, indexed under `id`; returns whether it was there. */
  delete(id: string, h: number): boolean {
    const pairs = this.pairs;
    const mask = this.mask;
    let i = hashId(id) & mask;
    for (;;) {
      const stored = pairs[2 * i + 1]!;
      if (stored === 0) return false;
      if (stored === h + 1) break;
      i = (i + 1) & mask;
    }
    // Backward shift: move each later entry of the run whose home is not in
    // (i, j] (cyclically) into the hole, so every entry stays reachable.
    for (let j = (i + 1) & mask; pairs[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = pairs[2 * j]! & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      pairs[2 * i] = pairs[2 * j]!;
      pairs[2 * i + 1] = pairs[2 * j + 1]!;
      i = j;
    }
    pairs[2 * i] = 0;
    pairs[2 * i + 1] = 0;
    this.count--;
    return true;
  }

  /** Makes room for `n` entries without growing again. */
  reserve(n: number): void {
    if (2 * n > this.mask + 1) this.rehash(slotsFor(2 * n));
  }

  private place(hash: number, stored: number): void {
    const pairs = this.pairs;
    const mask = this.mask;
    let i = hash & mask;
    while (pairs[2 * i + 1] !== 0) i = (i + 1) & mask;
    pairs[2 * i] = hash;
    pairs[2 * i + 1] = stored;
  }

  private rehash(slots: number): void {
    const old = this.pairs;
    this.pairs = new Int32Array(2 * slots);
    this.mask = slots - 1;
    for (let i = 1; i < old.length; i += 2) if (old[i] !== 0) this.place(old[i - 1]!, old[i]!);
  }
}

/**
 * 32-bit hash of a string's UTF-16 code units: FNV-1a, then murmur3's
 * finalizer so the low bits (the home slot) depend on every character.
 */
export function hashId(id: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function slotsFor(capacity: number): number {
  let slots = 16;
  while (slots < capacity) slots *= 2;
  return slots;
}
