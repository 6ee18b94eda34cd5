/**
 * `pnpm bench` (packages/core): the engine's throughput and memory, next to a
 * baseline measured in the same run.
 *
 * For N = 10^4, 10^5 and 10^6 live tasks and three shapes of work —
 * independent tasks, long chains, and a random DAG with fan-in up to 3 — one
 * run adds all N tasks (batches of 1,000), then consumes and completes them
 * all (`consumeTask` / `completeTask`). The baseline is a minimal binary heap
 * of `{ deadline, id }` objects (the obvious way to write "earliest deadline
 * first"): it creates N such objects, pushes them, then pops them all. Engine
 * and baseline alternate, after a forced GC each, and the figure is the
 * median over the repetitions (the machine is shared and noisy). The ratio
 * is the engine's throughput over the baseline's: 1× means the engine, with
 * validation, dependency tracking and leases, keeps up with a bare heap.
 *
 * Memory: heap bytes per live task after adding N tasks without payload
 * (heapUsed delta around `global.gc()`, the inputs dropped, so task ids and
 * prerequisite lists count). The engine keeps its numbers in typed arrays,
 * whose backing stores V8 reports under `arrayBuffers`, not `heapUsed`; the
 * "+buffers" column adds them, and the goal is checked against it.
 *
 * Environment: FRONTIER_BENCH_SIZES (default "10000,100000,1000000"),
 * FRONTIER_BENCH_REPS (default 7, 7, 5 by size), FRONTIER_BENCH_SHAPES
 * (default "independent,chains,dag").
 *
 * Run: node --expose-gc --conditions=source --import tsx bench/engine.bench.ts
 */
import os from "node:os";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { Scheduler, type TaskInput } from "../src/index.js";

const BATCH = 1_000;
const CHAIN_LENGTH = 1_000;
const MAX_FAN_IN = 3;
const GOAL_RATIO = 0.5;
const GOAL_BYTES = 300;

type Shape = "independent" | "chains" | "dag";
const ALL_SHAPES: readonly Shape[] = ["independent", "chains", "dag"];
const SHAPE_LABEL: Record<Shape, string> = {
  independent: "independent",
  chains: `chains of ${CHAIN_LENGTH}`,
  dag: `DAG, fan-in ≤ ${MAX_FAN_IN}`,
};

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with --expose-gc (pnpm bench does)");
  process.exit(1);
}

const SHAPES = (process.env["FRONTIER_BENCH_SHAPES"]?.split(",") ?? ALL_SHAPES).filter((s): s is Shape =>
  ALL_SHAPES.includes(s as Shape),
);
const sizes = (process.env["FRONTIER_BENCH_SIZES"] ?? "10000,100000,1000000").split(",").map(Number);
const repsFor = (n: number) => Number(process.env["FRONTIER_BENCH_REPS"] ?? (n >= 1_000_000 ? 5 : 7));

// ------------------------------------------------------------------ workload

/** A seeded PRNG (pure-rand's xoroshiro128+), so every run benchmarks the same graphs. */
function seededRandom(seed: number): () => number {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}

/** N tasks in batches of BATCH; every prerequisite comes earlier, so each batch is valid on arrival. */
function workload(shape: Shape, n: number): TaskInput[][] {
  const random = seededRandom(n * 31 + shape.length);
  const batches: TaskInput[][] = [];
  let batch: TaskInput[] = [];
  for (let i = 0; i < n; i++) {
    const id = `t${i}`;
    const deadline = Math.floor(random() * 1e9);
    let prerequisites: string[] | undefined;
    if (shape === "chains" && i % CHAIN_LENGTH !== 0) {
      prerequisites = [`t${i - 1}`];
    } else if (shape === "dag" && i > 0) {
      const k = Math.min(i, Math.floor(random() * (MAX_FAN_IN + 1)));
      if (k > 0) {
        const picked = new Set<number>();
        while (picked.size < k) picked.add(Math.floor(random() * i));
        prerequisites = [...picked].map((p) => `t${p}`);
      }
    }
    batch.push(prerequisites ? { id, deadline, prerequisites } : { id, deadline });
    if (batch.length === BATCH) {
      batches.push(batch);
      batch = [];
    }
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

// ------------------------------------------------------------------ baseline

interface Entry {
  readonly deadline: number;
  readonly id: string;
}

function before(a: Entry, b: Entry): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.id < b.id);
}

/** The minimal binary min-heap of objects: an array, sift up on push, sift down on pop. */
class BinaryHeap {
  private readonly items: Entry[] = [];

  get size(): number {
    return this.items.length;
  }

  push(e: Entry): void {
    const items = this.items;
    let i = items.length;
    items.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(e, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = e;
  }

  pop(): Entry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    const n = items.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(items[child + 1]!, items[child]!)) child++;
      const c = items[child]!;
      if (!before(c, last)) break;
      items[i] = c;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

// ------------------------------------------------------------------- runners

/** Milliseconds to add, consume and complete every task. */
function runEngine(batches: readonly TaskInput[][], n: number): number {
  const engine = new Scheduler({ now: () => 0 });
  const start = performance.now();
  for (const batch of batches) engine.addTasks(batch);
  let done = 0;
  for (let t = engine.consumeTask(); t !== null; t = engine.consumeTask()) {
    engine.completeTask(t.id);
    done++;
  }
  const ms = performance.now() - start;
  if (done !== n) throw new Error(`engine ran ${done} of ${n} tasks`);
  return ms;
}

/** Milliseconds to build, push and pop N { deadline, id } entries. */
function runBaseline(batches: readonly TaskInput[][], n: number): number {
  const heap = new BinaryHeap();
  const start = performance.now();
  for (const batch of batches) for (const t of batch) heap.push({ deadline: t.deadline, id: t.id });
  let done = 0;
  let last: Entry | undefined;
  for (let e = heap.pop(); e !== undefined; e = heap.pop()) {
    if (last && before(e, last)) throw new Error("baseline heap out of order");
    last = e;
    done++;
  }
  const ms = performance.now() - start;
  if (done !== n) throw new Error(`baseline ran ${done} of ${n} tasks`);
  return ms;
}

/** An engine holding the workload's tasks; the inputs are garbage once this returns. */
function loaded(shape: Shape, n: number): Scheduler {
  const engine = new Scheduler({ now: () => 0 });
  for (const batch of workload(shape, n)) engine.addTasks(batch);
  return engine;
}

/** Heap bytes per live task after adding all of them (inputs dropped, so ids and prerequisite lists count). */
function bytesPerTask(shape: Shape, n: number): { heap: number; withBuffers: number } {
  gc!();
  gc!();
  const m0 = process.memoryUsage();
  const engine = loaded(shape, n);
  gc!();
  gc!();
  const m1 = process.memoryUsage();
  if (engine.stats().counts.COMPLETED !== 0 || engine.getTask("t0") === undefined)
    throw new Error("unexpected state");
  return {
    heap: (m1.heapUsed - m0.heapUsed) / n,
    withBuffers: (m1.heapUsed + m1.arrayBuffers - (m0.heapUsed + m0.arrayBuffers)) / n,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// ---------------------------------------------------------------------- main

interface Row {
  shape: Shape;
  n: number;
  engine: number;
  baseline: number;
  ratio: number;
  heap: number;
  withBuffers: number;
}

function measure(shape: Shape, n: number, reps: number): Row {
  const batches = workload(shape, n);
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < reps; r++) {
    gc!();
    const e = runEngine(batches, n);
    gc!();
    const b = runBaseline(batches, n);
    engineRates.push((n / e) * 1000);
    baselineRates.push((n / b) * 1000);
    ratios.push(b / e);
  }
  const memory = bytesPerTask(shape, n);
  return {
    shape,
    n,
    engine: median(engineRates),
    baseline: median(baselineRates),
    ratio: median(ratios),
    heap: memory.heap,
    withBuffers: memory.withBuffers,
  };
}

function fmtRate(perSecond: number): string {
  return perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : `${(perSecond / 1e3).toFixed(0)} k/s`;
}

function fmtN(n: number): string {
  const e = Math.log10(n);
  return Number.isInteger(e) ? `10^${e}` : String(n);
}

function main(): void {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  console.log(`@frontier/core engine benchmark — node ${process.version}, ${cpu}, ${os.cpus().length} cores`);
  console.log(
    `add (batches of ${BATCH}) + consumeTask + completeTask of N tasks vs. a binary heap of {deadline, id} objects (push N, pop N);`,
  );
  console.log(
    "median of the repetitions; ratio = engine throughput / baseline throughput; memory after adding N tasks.\n",
  );

  // Warm up both sides so the first measured size does not pay for compilation.
  for (const shape of SHAPES) {
    const batches = workload(shape, 20_000);
    for (let i = 0; i < 3; i++) {
      runEngine(batches, 20_000);
      runBaseline(batches, 20_000);
    }
  }

  const header = ["shape", "live tasks", "engine", "binary heap", "ratio", "bytes/task heap", "+buffers"];
  const widths = [20, 10, 11, 11, 7, 15, 9];
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  const rows: Row[] = [];
  for (const n of sizes) {
    for (const shape of SHAPES) {
      const row = measure(shape, n, repsFor(n));
      rows.push(row);
      console.log(
        line([
          SHAPE_LABEL[shape],
          fmtN(n),
          fmtRate(row.engine),
          fmtRate(row.baseline),
          `${row.ratio.toFixed(2)}×`,
          row.heap.toFixed(0),
          row.withBuffers.toFixed(0),
        ]),
      );
    }
  }

  const largest = Math.max(...sizes);
  const atLargest = rows.filter((r) => r.n === largest);
  const worstRatio = Math.min(...atLargest.map((r) => r.ratio));
  const worstBytes = Math.max(...atLargest.map((r) => r.withBuffers));
  console.log(
    `\ngoals at ${fmtN(largest)} live tasks: ratio ≥ ${GOAL_RATIO}× (worst ${worstRatio.toFixed(2)}×: ${
      worstRatio >= GOAL_RATIO ? "met" : "MISSED"
    }), < ${GOAL_BYTES} bytes/task (worst ${worstBytes.toFixed(0)}: ${worstBytes < GOAL_BYTES ? "met" : "MISSED"})`,
  );
}

main();
