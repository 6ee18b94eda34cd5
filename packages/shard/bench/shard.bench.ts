/**
 * Shard benchmark (`pnpm --filter @frontier/shard bench`). Prints:
 *  1. Acknowledged operations per second through the journal, next to the
 *     in-memory engine alone in the same run, as a ratio. Workload: C
 *     concurrent callers, each looping submit(1 task) → lease(1) →
 *     complete; every call awaits its answer; completed tasks are compacted
 *     after 1 s. "flushed" and "committed" durability both. Then what
 *     bounds it: the device flush, and the journal's commit rate alone.
 *     Each row also gives the CPU time per acknowledged operation of the
 *     main thread and of every other thread (lmdb-js's write thread, GC
 *     helpers), read from /proc (Linux): on a shared machine CPU time per
 *     operation moves far less than operations per second do.
 *  1b. ("rows" part) What one journal row costs: blocks of rows shaped like
 *     the loop's (a third added, a third status changes, a third dropped)
 *     appended through the journal, against blocks of the same appends with
 *     no task rows; CPU per row op of the main thread and of the others.
 *  2. Recovery: time to open a directory holding 10^5 and 10^6 live tasks
 *     (the journal's read of every row alone; Shard.open in all, wall clock
 *     and CPU), memory after opening, and disk bytes per live task. Each
 *     read and each open runs in a new process, as after a restart: in a
 *     process that already built and dropped a large engine, the next open
 *     measured up to 1.5x slower (V8 and malloc hand back memory that has to
 *     be faulted in again, and scavenges promote into fragmented pages).
 *
 * FRONTIER_BENCH_SECONDS (default 3) sets each throughput run's length;
 * FRONTIER_BENCH_SIZES (default "100000,1000000") the recovery sizes;
 * FRONTIER_BENCH_PARTS (default "throughput,recovery"; "rows" is the extra
 * part 1b) which parts run; FRONTIER_BENCH_CALLERS (default
 * "1,64,256,1024") and FRONTIER_BENCH_DURABILITIES (default
 * "flushed,committed") which throughput rows;
 * FRONTIER_BENCH_OPENS (default 3) how often each recovery directory is
 * reopened (the median is reported: the machine is shared and noisy).
 */
import { execFileSync } from "node:child_process";
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Lease, Scheduler, type TaskInput, type TaskSpec, type TaskStatus } from "@frontier/core";
import { type Durability, type JournalRecord, LmdbJournal, Shard } from "../src/index.js";

const seconds = Number(process.env["FRONTIER_BENCH_SECONDS"] ?? 3);
const sizes = (process.env["FRONTIER_BENCH_SIZES"] ?? "100000,1000000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const opens = Number(process.env["FRONTIER_BENCH_OPENS"] ?? 3);
const parts = new Set((process.env["FRONTIER_BENCH_PARTS"] ?? "throughput,recovery").split(","));
const callerCounts = (process.env["FRONTIER_BENCH_CALLERS"] ?? "1,64,256,1024").split(",").map(Number);
const durabilities = (process.env["FRONTIER_BENCH_DURABILITIES"] ?? "flushed,committed").split(
  ",",
) as Durability[];
/** Set in the processes the recovery part starts (recoveryChild). */
const child = process.env["FRONTIER_BENCH_CHILD"];
const root = child ? "" : mkdtempSync(join(tmpdir(), "frontier-shard-bench-"));
let dirs = 0;

/** The three calls of the workload, as async functions. */
interface Target {
  submit(task: TaskInput): Promise<unknown>;
  lease(owner: string): Promise<Lease[]>;
  complete(id: string, token: number): Promise<unknown>;
}

/**
 * Steady state: completed tasks are compacted a second after they finish, so
 * the live population stays bounded (a task's whole life, drop included, is
 * measured) and the engine reuses its handles.
 */
const STEADY_RETENTION_MS = 1_000;

/** The engine alone behind the same async surface: each call answers at once. */
function engineTarget(): Target {
  const engine = new Scheduler({ retentionMs: STEADY_RETENTION_MS });
  return {
    submit: async (task) => engine.addTasks(task),
    lease: async (owner) => engine.lease(owner, { max: 1, leaseMs: 60_000 }),
    complete: async (id, token) => engine.complete(id, token),
  };
}

function shardTarget(shard: Shard): Target {
  return {
    submit: (task) => shard.submit(task),
    lease: (owner) => shard.lease(owner, { max: 1, leaseMs: 60_000 }),
    complete: (id, token) => shard.complete(id, token),
  };
}

/** CPU time (ms) of this process's main thread and of all its other threads, from /proc; undefined elsewhere. */
function threadCpu(): { main: number; others: number } | undefined {
  try {
    const tick = 10; // ms per clock tick (USER_HZ 100)
    let main = 0;
    let others = 0;
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = (Number(fields[11]) + Number(fields[12])) * tick;
      if (Number(tid) === process.pid) main += ms;
      else others += ms;
    }
    return { main, others };
  } catch {
    return undefined;
  }
}

/** CPU µs per operation of the main thread and of the others, between two threadCpu readings. */
function cpuPerOp(
  before: ReturnType<typeof threadCpu>,
  after: ReturnType<typeof threadCpu>,
  ops: number,
): string {
  if (!before || !after || ops === 0) return "– | –";
  return `${(((after.main - before.main) * 1000) / ops).toFixed(2)} | ${(((after.others - before.others) * 1000) / ops).toFixed(2)}`;
}

interface DriveResult {
  readonly opsPerSecond: number;
  readonly ops: number;
  /** Main thread and other threads: CPU µs per operation, as table cells. */
  readonly cpu: string;
}

/** Runs `callers` loops for `seconds`; returns acknowledged operations per second. */
async function drive(target: Target, callers: number): Promise<DriveResult> {
  let ops = 0;
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const caller = async (c: number) => {
    while (performance.now() < end) {
      const id = `t${next++}`;
      await target.submit({ id, deadline: next });
      ops++;
      const [lease] = await target.lease(`c${c}`);
      ops++;
      if (lease) {
        await target.complete(lease.taskId, lease.token);
        ops++;
      }
    }
  };
  const cpuBefore = threadCpu();
  const start = performance.now();
  await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
  const opsPerSecond = (ops / (performance.now() - start)) * 1000;
  return { opsPerSecond, ops, cpu: cpuPerOp(cpuBefore, threadCpu(), ops) };
}

async function throughput(): Promise<void> {
  console.log(`\n## Acknowledged ops/s (submit → lease → complete loops, ${seconds} s each)\n`);
  console.log(
    "| callers | target | ops/s | vs engine alone | calls per commit | main thread CPU µs/op | other threads CPU µs/op |",
  );
  console.log("|---:|---|---:|---:|---:|---:|---:|");
  let engineAt64 = 0;
  for (const callers of callerCounts) {
    const baseline = await drive(engineTarget(), callers);
    if (callers === 64) engineAt64 = baseline.opsPerSecond;
    console.log(
      `| ${callers} | engine alone (no journal) | ${fmt(baseline.opsPerSecond)} | 1.00 | – | ${baseline.cpu} |`,
    );
    for (const durability of durabilities) {
      const shard = await Shard.open({
        dataDir: join(root, `t${dirs++}`),
        durability,
        retentionMs: STEADY_RETENTION_MS,
      });
      const result = await drive(shardTarget(shard), callers);
      const { appends, commits } = shard.stats().journal;
      await shard.close();
      const ratio = result.opsPerSecond / baseline.opsPerSecond;
      console.log(
        `| ${callers} | shard, ${durability} | ${fmt(result.opsPerSecond)} | ${ratio.toFixed(3)} | ${(appends / commits).toFixed(1)} | ${result.cpu} |`,
      );
    }
  }
  if (engineAt64 > 0) await flushCeiling(engineAt64);
}

/**
 * What bounds the rows above. LMDB flushes every commit (under
 * overlappingSync, in the thread that commits, before lmdb-js lets a later
 * transaction take the write lock), so commits per second stay near flushes
 * per second whatever the durability; and C callers that await each answer
 * put at most C calls into one commit. Prints the device flush (write +
 * fdatasync of a 4 KiB page next to the data), then the journal alone
 * (appends shaped like the shard's: a status row, the meta, the clock): one
 * append at a time, and 64 appenders each awaiting its answer, which is
 * about the most 64 of the shard's callers can get (they add the engine's
 * work to the same waits).
 */
async function flushCeiling(engineAt64: number): Promise<void> {
  const dir = join(root, `f${dirs++}`);
  mkdirSync(dir);
  const fd = openSync(join(dir, "probe"), "w");
  const page = Buffer.alloc(4096, 1);
  const flushes: number[] = [];
  for (let i = 0; i < 500; i++) {
    const start = performance.now();
    writeSync(fd, page, 0, page.length, (i % 16) * page.length);
    fdatasyncSync(fd);
    flushes.push(performance.now() - start);
  }
  closeSync(fd);
  console.log("\n## What bounds it: flushes\n");
  console.log(`write + fdatasync of a 4 KiB page: median ${median(flushes).toFixed(3)} ms\n`);
  console.log(
    "| durability | journal alone, one append at a time: ms per commit | 64 appenders: appends/s | commits/s | vs engine alone (64 callers) |",
  );
  console.log("|---|---:|---:|---:|---:|");
  const status = { state: "RUNNABLE", deadline: 1, attempts: 0, token: 0 } as const;
  const meta = {
    tokenSeq: 1,
    clock: 1,
    leaseTimeouts: 0,
    attemptTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
  };
  for (const durability of ["flushed", "committed"] as Durability[]) {
    const journal = await LmdbJournal.open({ dataDir: join(root, `f${dirs++}`), durability });
    const append = (id: string, at: number) =>
      journal.append([
        { kind: "set", id, status },
        { kind: "meta", meta },
        { kind: "clock", at },
      ]);
    const one = performance.now();
    for (let i = 0; i < 300; i++) await append("a", i);
    const msPerCommit = (performance.now() - one) / 300;
    const firstCommit = journal.stats().commits;
    let appends = 0;
    const end = performance.now() + seconds * 1000;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        while (performance.now() < end) {
          await append(`c${c}`, appends);
          appends++;
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    const commits = journal.stats().commits - firstCommit;
    await journal.close();
    console.log(
      `| ${durability} | ${msPerCommit.toFixed(3)} | ${fmt(appends / elapsed)} | ${fmt(commits / elapsed)} | ${(appends / elapsed / engineAt64).toFixed(3)} |`,
    );
  }
}

/**
 * What one journal row costs (part 1b). Blocks of `ROW_BLOCK_OPS` appends
 * shaped like the throughput loop's: a third add a task (a spec and a status
 * row), a third change a status, a third drop a task added earlier (two
 * deletes); each append also carries the engine meta and the clock, as the
 * shard's do. Against that, blocks of the same number of appends carrying
 * only the meta and the clock: the difference is the rows' cost, on the
 * main thread (encoding, lmdb-js's queueing of each put) and on the others
 * (lmdb-js's write thread doing the B-tree work). Each block is awaited
 * before the next, as the closed loop at 1,024 callers does; the tables hold
 * ROW_LIVE_TASKS tasks throughout.
 */
const ROW_BLOCK_OPS = 900;
const ROW_BLOCKS = 200;
/**
 * Tasks live in the tables while the rows part runs: about what the loop at
 * 1,024 callers holds (~40,000 tasks finished per second, compacted after 1 s).
 */
const ROW_LIVE_TASKS = 40_000;

async function rowCosts(): Promise<void> {
  const spec = (id: string): TaskSpec => ({
    id,
    prerequisites: [],
    maxAttempts: 3,
    hardDeadline: false,
    onPrerequisiteFailure: "cancel",
  });
  const statuses: TaskStatus[] = [
    { state: "RUNNABLE", deadline: 1, attempts: 0, token: 0, runnableSince: 1_765_000_000_000 },
    {
      state: "LEASED",
      deadline: 1,
      attempts: 1,
      token: 7,
      leaseOwner: "c12",
      leaseExpiresAt: 1_765_000_060_000,
    },
    {
      state: "COMPLETED",
      deadline: 1,
      attempts: 1,
      token: 7,
      leaseOwner: "c12",
      finishedAt: 1_765_000_000_100,
    },
  ];
  const meta = {
    tokenSeq: 1,
    clock: 1,
    leaseTimeouts: 0,
    attemptTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
  };
  console.log(
    `\n## What a journal row costs (blocks of ${ROW_BLOCK_OPS} appends, ${ROW_BLOCKS} blocks each)\n`,
  );
  console.log(
    "| blocks | row ops per block | ms per block (wall) | main thread CPU ms per block | other threads CPU ms per block |",
  );
  console.log("|---|---:|---:|---:|---:|");
  const measured: Record<string, { rows: number; main: number; others: number }> = {};
  for (const shape of ["no task rows", "task rows", "no task rows", "task rows"] as const) {
    const journal = await LmdbJournal.open({ dataDir: join(root, `w${dirs++}`) });
    // Tasks t<first> .. t<next - 1> are live: drops take the oldest, status changes the newest.
    let next = 0;
    let first = 0;
    let rows = 0;
    const block = (): Promise<void>[] => {
      const appends: Promise<void>[] = [];
      for (let i = 0; i < ROW_BLOCK_OPS; i++) {
        const records: JournalRecord[] = [{ kind: "meta", meta }];
        if (shape === "task rows") {
          if (i % 3 === 0 || next - first < ROW_LIVE_TASKS) {
            const id = `t${next++}`;
            records.push({ kind: "add", spec: spec(id), status: statuses[0]! });
            rows += 2;
          } else if (i % 3 === 1) {
            records.push({ kind: "set", id: `t${next - 1 - (i % 300)}`, status: statuses[1]! });
            rows += 1;
          } else {
            records.push({ kind: "drop", id: `t${first++}` });
            rows += 2;
          }
        }
        records.push({ kind: "clock", at: i });
        appends.push(journal.append(records));
      }
      return appends;
    };
    // Fills the tables to ROW_LIVE_TASKS first, then runs warm.
    while (shape === "task rows" && next < ROW_LIVE_TASKS) await Promise.all(block());
    for (let b = 0; b < 20; b++) await Promise.all(block());
    rows = 0;
    const before = threadCpu();
    const start = performance.now();
    for (let b = 0; b < ROW_BLOCKS; b++) await Promise.all(block());
    const wall = (performance.now() - start) / ROW_BLOCKS;
    const after = threadCpu();
    await journal.close();
    const main = before && after ? (after.main - before.main) / ROW_BLOCKS : Number.NaN;
    const others = before && after ? (after.others - before.others) / ROW_BLOCKS : Number.NaN;
    measured[shape] = { rows: rows / ROW_BLOCKS, main, others };
    console.log(
      `| ${shape} | ${(rows / ROW_BLOCKS).toFixed(0)} | ${wall.toFixed(2)} | ${main.toFixed(2)} | ${others.toFixed(2)} |`,
    );
  }
  const withRows = measured["task rows"]!;
  const without = measured["no task rows"]!;
  console.log(
    `\nPer row op (the last run of each): main thread ${(((withRows.main - without.main) * 1000) / withRows.rows).toFixed(2)} µs, other threads ${(((withRows.others - without.others) * 1000) / withRows.rows).toFixed(2)} µs of CPU.`,
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
}

/**
 * Writes a live population of n tasks, submitted in batches of 10 000: every
 * third task waits on the one before it, and a tenth of all are then leased
 * (live leases must come back with their expiries). Returns the seconds taken.
 */
async function populate(dataDir: string, n: number): Promise<number> {
  const shard = await Shard.open({ dataDir });
  const start = performance.now();
  const batch = 10_000;
  for (let base = 0; base < n; base += batch) {
    const tasks: TaskInput[] = [];
    for (let i = base; i < Math.min(n, base + batch); i++) {
      // Every third task waits on the one before it (chains), the others stand alone.
      const prerequisites = i % 3 === 2 ? [`task-${String(i - 1).padStart(8, "0")}`] : [];
      tasks.push({
        id: `task-${String(i).padStart(8, "0")}`,
        deadline: 1_000_000 + ((i * 7919) % n),
        prerequisites,
        workflowId: `wf-${i % 1000}`,
      });
    }
    await shard.submit(tasks);
  }
  // Lease a tenth: live leases must survive recovery with their expiries.
  for (let leased = 0; leased < n / 10; leased += 10_000)
    await shard.lease("bench", { max: Math.min(10_000, n / 10 - leased), leaseMs: 3_600_000 });
  const seconds = (performance.now() - start) / 1000;
  await shard.close();
  return seconds;
}

async function recovery(): Promise<void> {
  console.log(
    `\n## Recovery and disk use (each read and open in a new process; median of ${opens}, range in brackets)\n`,
  );
  console.log(
    "| live tasks | populate (s) | journal read (s) | Shard.open total (s) | Shard.open CPU (s) | heap after open (MB) | + array buffers (MB) | data.mdb bytes / task | B-tree pages bytes / task |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const n of sizes) {
    const dataDir = join(root, `r${n}`);
    const populateSeconds = await populate(dataDir, n);
    const journal = await LmdbJournal.open({ dataDir });
    const disk = journal.diskUsage();
    await journal.close();
    const reads: number[] = [];
    const walls: number[] = [];
    const cpus: number[] = [];
    let memory: ChildResult | undefined;
    for (let i = 0; i < opens; i++) {
      reads.push(runChild({ mode: "read", dataDir, n }).seconds);
      const opened = runChild({ mode: "open", dataDir, n });
      walls.push(opened.seconds);
      cpus.push(opened.cpuSeconds);
      memory ??= opened;
    }
    console.log(
      `| ${fmt(n)} | ${populateSeconds.toFixed(1)} | ${spread(reads)} | ${spread(walls)} | ${spread(cpus)} | ${memory!.heapMb.toFixed(0)} | ${memory!.buffersMb.toFixed(0)} | ${(disk.fileBytes / n).toFixed(0)} | ${(disk.treeBytes / n).toFixed(0)} |`,
    );
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface ChildTask {
  /** "read": the journal alone reads every row; "open": Shard.open. */
  readonly mode: "read" | "open";
  readonly dataDir: string;
  readonly n: number;
}

interface ChildResult {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly heapMb: number;
  readonly buffersMb: number;
}

/** Runs one read or open in a new process (this script, in child mode). */
function runChild(task: ChildTask): ChildResult {
  const output = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, FRONTIER_BENCH_CHILD: JSON.stringify(task) },
    encoding: "utf8",
  });
  return JSON.parse(output.trim().split("\n").pop()!) as ChildResult;
}

/** Child mode: one read or open of a populated directory; prints a ChildResult. */
async function recoveryChild(task: ChildTask): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  gc();
  const before = process.memoryUsage();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  let check: () => void;
  let close: () => Promise<void>;
  if (task.mode === "read") {
    // The rows are read as they are iterated.
    const journal = await LmdbJournal.open({ dataDir: task.dataDir });
    let rows = 0;
    for (const _ of journal.load().tasks) rows++;
    check = () => {
      if (rows !== task.n) throw new Error(`expected ${task.n} live tasks, loaded ${rows}`);
    };
    close = () => journal.close();
  } else {
    const shard = await Shard.open({ dataDir: task.dataDir });
    check = () => {
      const leased = shard.stats().counts.LEASED;
      if (leased !== task.n / 10) throw new Error(`expected ${task.n / 10} live leases, found ${leased}`);
    };
    close = () => shard.close();
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  check();
  gc();
  const after = process.memoryUsage();
  await close();
  const result: ChildResult = {
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    heapMb: (after.heapUsed - before.heapUsed) / 2 ** 20,
    buffersMb: (after.arrayBuffers - before.arrayBuffers) / 2 ** 20,
  };
  console.log(JSON.stringify(result));
}

/** Median, and the range when there are several values. */
function spread(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  if (sorted.length < 2) return median.toFixed(2);
  return `${median.toFixed(2)} (${sorted[0]!.toFixed(2)}–${sorted[sorted.length - 1]!.toFixed(2)})`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

if (child) await recoveryChild(JSON.parse(child) as ChildTask);
else {
  console.log(`# @frontier/shard benchmark\n`);
  console.log(`Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, data in ${root}`);
  try {
    if (parts.has("throughput")) await throughput();
    if (parts.has("rows")) await rowCosts();
    if (parts.has("recovery")) await recovery();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
