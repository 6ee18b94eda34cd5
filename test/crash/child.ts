/**
 * Crash-harness child: runs a shard under a stream of random operations from
 * concurrent workers and reports, on stdout, one JSON line per event the
 * moment it happens (see protocol.ts). The parent kills it with SIGKILL at a
 * random point and checks every acknowledgement against the reopened shard.
 *
 *   node --conditions=source --import tsx test/crash/child.ts <dataDir> <seed> <durability> <prefix>
 */
import { writeSync } from "node:fs";
import { type Durability, Shard } from "@frontier/shard";
import { type Event, HARNESS_SHARD_OPTIONS, LEASE_MS, SHORT_LEASE_MS, seededRandom } from "./protocol.js";

const [dataDir, seedText, durability, prefix] = process.argv.slice(2);
if (!dataDir || !seedText || !durability || !prefix)
  throw new Error("usage: child.ts <dataDir> <seed> <durability> <prefix>");
const random = seededRandom(Number(seedText));
type Lease = Awaited<ReturnType<Shard["lease"]>>[number];
type TaskInput = Extract<Parameters<Shard["submit"]>[0], { id: string }>;
const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(random() * items.length)];

/**
 * Writes one line to stdout before returning. stdout is a non-blocking pipe:
 * when the parent falls behind, a write fails with EAGAIN or writes part of
 * the line, so this loops until all of it is out.
 */
function emit(event: Event): void {
  const line = Buffer.from(`${JSON.stringify(event)}\n`);
  for (let written = 0; written < line.length; ) {
    try {
      written += writeSync(1, line, written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
    }
  }
}

// The parent holds stdin open; if it dies, stop rather than run on forever.
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();

const shard = await Shard.open({ dataDir, durability: durability as Durability, ...HARNESS_SHARD_OPTIONS });
emit({ t: "ready", pid: process.pid });

/** Acknowledged task ids (candidates for prerequisites, cancels, deadline updates). */
const known: string[] = [];
/** Leases this process holds and has not released. */
const held = new Map<string, Lease>();
/** Accepted idempotency keys, with the ids they added. */
const keys: string[] = [];
let next = 0;

async function submit(): Promise<void> {
  const size = random() < 0.1 ? 20 + Math.floor(random() * 30) : 1 + Math.floor(random() * 4);
  const tasks: TaskInput[] = [];
  for (let i = 0; i < size; i++) {
    const prerequisites = new Set<string>();
    const fanIn = random() < 0.5 ? Math.floor(random() * 3) : 0;
    for (let k = 0; k < fanIn; k++) {
      const p = random() < 0.5 && tasks.length > 0 ? pick(tasks)?.id : pick(known);
      if (p !== undefined) prerequisites.add(p);
    }
    tasks.push({
      id: `${prefix}-${next++}`,
      deadline: Math.floor(random() * 1000),
      prerequisites: [...prerequisites],
    });
  }
  const key = random() < 0.3 ? `${prefix}-key-${next++}` : undefined;
  const result = await shard.submit(tasks, key === undefined ? {} : { idempotencyKey: key });
  emit({
    t: "submit",
    key,
    tasks: tasks.map((task) => ({ id: task.id, prerequisites: task.prerequisites ?? [] })),
    taskIds: result.taskIds,
    duplicate: result.duplicate,
  });
  if (key !== undefined) keys.push(key);
  for (const id of result.taskIds) known.push(id);
}

async function resubmit(): Promise<void> {
  const key = pick(keys);
  if (key === undefined) return;
  const result = await shard.submit([{ id: `${prefix}-never-${next++}`, deadline: 1 }], {
    idempotencyKey: key,
  });
  emit({ t: "resubmit", key, taskIds: result.taskIds, duplicate: result.duplicate });
}

async function lease(): Promise<void> {
  const leaseMs = random() < 0.15 ? SHORT_LEASE_MS : LEASE_MS;
  const leases = await shard.lease(prefix!, { max: 1 + Math.floor(random() * 3), leaseMs });
  for (const l of leases) {
    held.set(l.taskId, l);
    emit({ t: "lease", id: l.taskId, token: l.token, expiresAt: l.expiresAt, leaseMs });
  }
}

/** Takes a held lease out of `held`, so no other worker uses it meanwhile. */
function takeHeld(): Lease | undefined {
  const id = pick([...held.keys()]);
  if (id === undefined) return undefined;
  const l = held.get(id)!;
  held.delete(id);
  return l;
}

async function complete(): Promise<void> {
  const l = takeHeld();
  if (!l) return;
  emit({ t: "req", op: "complete", id: l.taskId, token: l.token });
  const { duplicate } = await shard.complete(l.taskId, l.token);
  emit({ t: "complete", id: l.taskId, token: l.token, duplicate });
  if (random() < 0.2) {
    const again = await shard.complete(l.taskId, l.token);
    emit({ t: "complete", id: l.taskId, token: l.token, duplicate: again.duplicate });
  }
}

async function fail(): Promise<void> {
  const l = takeHeld();
  if (!l) return;
  const retryable = random() < 0.7;
  emit({ t: "req", op: "fail", id: l.taskId, token: l.token });
  const view = await shard.fail(l.taskId, l.token, { retryable, reason: "harness" });
  emit({ t: "fail", id: l.taskId, token: l.token, state: view.state });
}

async function heartbeat(): Promise<void> {
  const id = pick([...held.keys()]);
  if (id === undefined) return;
  const l = await shard.heartbeat(id, held.get(id)!.token, { leaseMs: LEASE_MS });
  if (held.has(id)) held.set(id, l);
  emit({ t: "heartbeat", id, token: l.token, expiresAt: l.expiresAt });
}

async function cancel(): Promise<void> {
  const id = pick(known);
  if (id === undefined) return;
  emit({ t: "req", op: "cancel", id });
  await shard.cancel(id, "harness");
  emit({ t: "cancel", id });
}

async function updateDeadline(): Promise<void> {
  const id = pick(known);
  if (id === undefined) return;
  await shard.updateDeadline(id, Math.floor(random() * 1000));
}

const operations: [number, () => Promise<void>][] = [
  [0.28, submit],
  [0.22, lease],
  [0.2, complete],
  [0.1, fail],
  [0.07, heartbeat],
  [0.05, cancel],
  [0.04, resubmit],
  [0.04, updateDeadline],
];

async function worker(): Promise<void> {
  for (;;) {
    let r = random();
    const operation = operations.find(([weight]) => (r -= weight) < 0)?.[1] ?? submit;
    try {
      await operation();
    } catch (error) {
      const code = (error as { code?: string }).code;
      // The engine's refusals (a lease that expired meanwhile, a cancel of a
      // finished task...) are part of the game; anything else is not.
      const engine = ["STALE_LEASE", "INVALID_STATE", "UNKNOWN_TASK", "VALIDATION_FAILED"];
      if (code === undefined || !engine.includes(code)) {
        emit({ t: "fatal", message: String((error as Error)?.stack ?? error) });
        process.exit(1);
      }
    }
  }
}

await Promise.all(Array.from({ length: 16 }, worker));
