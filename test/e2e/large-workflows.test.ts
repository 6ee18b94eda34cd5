/**
 * Large workflows across shards (docs/cluster.md, "Large workflows across
 * shards"): one workflow marked large, its tasks placed by (workflowId, id)
 * over every slot of two shards, its edges between slots carried by
 * completion events. Drained by a worker that checks, at each grant, that
 * every prerequisite of the task completed before (a dependent unblocked by
 * an event applied twice, with fan-in 2 or more, would be granted early),
 * and that each task completes once. First with the shards in this
 * process; then with the shards as OS processes, each SIGKILLed mid-drain
 * and started again on its data.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type FrontierClient } from "@frontier/client";
import { type Coordinator, startCoordinator } from "@frontier/coordinator";
import type { Lease, TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import {
  decodeReply,
  encodeRequest,
  SLOT_COUNT,
  slotOfTask,
  subjectsFor,
  unwrapReply,
} from "@frontier/protocol";
import { type NatsConnection, connect as natsConnect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startCluster, type TestCluster, until } from "./harness.js";

/**
 * A layered DAG of `layers` layers of `width` tasks: each task past the
 * first layer depends on `fanIn` tasks of the layer before (a fixed
 * pattern, so a run is repeatable). Every task of the workflow is large.
 */
function layeredDag(workflowId: string, layers: number, width: number, fanIn: number): TaskInput[] {
  const tasks: TaskInput[] = [];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const prerequisites =
        l === 0 ? [] : Array.from({ length: fanIn }, (_, k) => `L${l - 1}-${(i * 7 + k * 13) % width}`);
      tasks.push({
        id: `L${l}-${i}`,
        deadline: 1_000 * (l + 1) + i,
        workflowId,
        large: true,
        prerequisites: [...new Set(prerequisites)],
      });
    }
  }
  return tasks;
}

/**
 * How long the drainer waits for one call, ms: the SDK retries a call whose
 * shard is down (killed here on purpose) for longer than the drain can wait.
 */
const CALL_MS = 3_000;

/** Submits `tasks` in batches (in order: a batch's prerequisites are in it or before it). */
async function submitAll(client: FrontierClient, tasks: readonly TaskInput[], key: string): Promise<void> {
  for (let i = 0; i < tasks.length; i += 500)
    await client.submit(tasks.slice(i, i + 500), { idempotencyKey: `${key}-${i}` });
}

interface Drain {
  /** Completions acknowledged, by task. */
  readonly completed: Map<string, number>;
  /** Grants whose task had a prerequisite not completed yet (must stay empty). */
  readonly early: string[];
}

/**
 * Leases and completes until every task of `tasks` completed, or `stop()`
 * says so; checks each grant against the completions acknowledged so far.
 * A complete that fails (its shard killed) is left: the lease expires and
 * the task comes back.
 */
async function drain(
  client: FrontierClient,
  tasks: readonly TaskInput[],
  onProgress: (done: number) => Promise<void> = async () => {},
): Promise<Drain> {
  const prerequisitesOf = new Map(tasks.map((t) => [t.id, t.prerequisites ?? []]));
  const completed = new Map<string, number>();
  const early: string[] = [];
  const reconcile = (id: string) => {
    if (!completed.has(id)) completed.set(id, 1);
  };
  const deadline = Date.now() + 240_000;
  let reconciledAt = 0;
  while (completed.size < tasks.length) {
    if (Date.now() > deadline) throw new Error(`drain stuck at ${completed.size} of ${tasks.length}`);
    let leases: readonly Lease[] = [];
    try {
      leases = await client.lease({
        max: 50,
        leaseMs: 4_000,
        waitMs: 500,
        owner: "drainer",
        signal: AbortSignal.timeout(CALL_MS),
      });
    } catch {
      // A shard restarting: the SDK gave up its retries; ask again.
      await onProgress(completed.size);
      continue;
    }
    if (leases.length === 0 && Date.now() - reconciledAt > 2_000) {
      // Nothing runnable: completes whose replies a kill lost may be all that is left. Asked
      // until a shard does not answer (killed: asked again in a later round).
      reconciledAt = Date.now();
      for (const t of tasks) {
        if (completed.has(t.id)) continue;
        const state = await stateOf(client, t.workflowId, t.id);
        if (state === UNREACHABLE) break;
        if (state === "COMPLETED") reconcile(t.id);
      }
    }
    for (const lease of leases) {
      const missing = (prerequisitesOf.get(lease.taskId) ?? []).filter((p) => !completed.has(p));
      // A complete whose reply a kill lost did happen: the prerequisite's shard says so.
      for (const p of missing)
        if ((await stateOf(client, lease.task.workflowId, p)) === "COMPLETED") reconcile(p);
      const still = missing.filter((p) => !completed.has(p));
      if (still.length > 0) early.push(`${lease.taskId} before ${still.join(",")}`);
    }
    const done = await Promise.allSettled(
      leases.map((lease) => client.complete(lease, { signal: AbortSignal.timeout(CALL_MS) })),
    );
    done.forEach((outcome, i) => {
      if (outcome.status !== "fulfilled" || outcome.value.duplicate) return;
      const id = leases[i]!.taskId;
      completed.set(id, (completed.get(id) ?? 0) + 1);
    });
    await onProgress(completed.size);
  }
  return { completed, early };
}

/** Completion events `shardId` owes (its stats' remoteOwed), asked of the shard itself; 0 when it does not answer. */
async function owedBy(nc: NatsConnection, cluster: string, shardId: string): Promise<number> {
  try {
    const msg = await nc.request(
      subjectsFor(cluster).shard(shardId, "stats"),
      encodeRequest({ op: "stats" }),
      {
        timeout: CALL_MS,
      },
    );
    return unwrapReply(decodeReply(msg.data, "stats")).stats.remoteOwed ?? 0;
  } catch {
    return 0;
  }
}

const UNREACHABLE = "unreachable";

/** A large task's state as its shard tells it: null when unknown, UNREACHABLE when unanswered. */
async function stateOf(
  client: FrontierClient,
  workflowId: string | undefined,
  id: string,
): Promise<string | null> {
  try {
    const options = { large: true, signal: AbortSignal.timeout(CALL_MS) };
    return (
      (await client.getTask(id, workflowId === undefined ? options : { ...options, workflowId }))?.state ??
      null
    );
  } catch {
    return UNREACHABLE;
  }
}

describe("a large workflow over two in-process shards", () => {
  let c: TestCluster;
  afterAll(() => c?.stop());

  it("spreads over both shards, refuses bad links in one report, and drains with each dependent unblocked once", async () => {
    c = await startCluster({ shards: 2, cluster: "large" });
    const client = await c.client();
    const tasks = layeredDag("big", 4, 150, 3);
    await submitAll(client, tasks, "big");
    const counts = c.shards.map((s) => s.stats().shard.counts);
    const held = counts.map((k) => k.WAITING + k.RUNNABLE);
    expect(held[0]! + held[1]!).toBe(tasks.length);
    // Placed by (workflowId, id): both shards hold a good share of the one workflow.
    for (const n of held) expect(n).toBeGreaterThan(tasks.length / 4);

    // A dependent of a task that does not exist, and one of an ordinary task: refused whole.
    await client.submit([{ id: "plain", deadline: 1, workflowId: "big2" }], { idempotencyKey: "plain" });
    const refused = await client
      .submit(
        [
          { id: "x1", deadline: 1, workflowId: "big", large: true, prerequisites: ["nope"] },
          { id: "x2", deadline: 1, workflowId: "big2", large: true, prerequisites: ["plain"] },
        ],
        { idempotencyKey: "bad" },
      )
      .then(
        () => undefined,
        (error: { code?: string; problems?: { taskId: string; code: string }[] }) => error,
      );
    expect(refused?.code).toBe("VALIDATION_FAILED");
    expect(refused?.problems?.map((p) => [p.taskId, p.code]).sort()).toEqual(
      [
        ["x1", expect.stringMatching(/UNKNOWN_PREREQUISITE|CROSS_WORKFLOW/)],
        ["x2", expect.stringMatching(/UNKNOWN_PREREQUISITE|CROSS_WORKFLOW/)],
      ].sort(),
    );
    expect(await client.getTask("x1", { workflowId: "big", large: true })).toBeNull();

    const { completed, early } = await drain(client, tasks);
    expect(early).toEqual([]);
    expect([...completed.values()].every((n) => n === 1)).toBe(true);
    // Every task is COMPLETED, found by its (workflowId, id, large) route; each applied each
    // remote prerequisite once.
    for (const t of tasks.filter((_, i) => i % 37 === 0)) {
      const view = await client.getTask(t.id, { workflowId: "big", large: true });
      expect(view?.state).toBe("COMPLETED");
      const met = view?.remoteMet ?? [];
      expect(new Set(met).size).toBe(met.length);
    }
  }, 180_000);
});

describe("a large workflow whose slots move between shards mid-drain", () => {
  let c: TestCluster;
  afterAll(() => c?.stop());

  it("takes the moved slots' owed events and applied pairs along: every dependent unblocked once", async () => {
    c = await startCluster({ shards: 2, cluster: "largemove" });
    const client = await c.client();
    const tasks = layeredDag("mover", 4, 120, 2);
    await submitAll(client, tasks, "mover");
    // The slots of the workflow's tasks that shard-0 holds: moved to shard-1 at a quarter done,
    // back at half done, while completion events for their tasks are in flight.
    const slotsOf = (shard: number) => {
      const owned = new Set(c.shards[shard]!.ownedSlots());
      const slots = new Set(tasks.map((t) => slotOfTask({ id: t.id, workflowId: "mover", large: true })));
      return [...slots].filter((slot) => owned.has(slot)).slice(0, 40);
    };
    const moving = slotsOf(0);
    expect(moving.length).toBeGreaterThan(10);
    let moved = 0;
    let tasksMoved = 0;
    const { completed, early } = await drain(client, tasks, async (done) => {
      const target =
        moved === 0 && done >= tasks.length / 4
          ? "shard-1"
          : moved === 1 && done >= tasks.length / 2
            ? "shard-0"
            : undefined;
      if (target === undefined) return;
      moved++;
      for (const slot of moving) tasksMoved += (await client.moveSlot(slot, target)).tasks;
    });
    expect(moved).toBe(2);
    expect(tasksMoved).toBeGreaterThan(0);
    expect(early).toEqual([]);
    expect(completed.size).toBe(tasks.length);
    expect([...completed.values()].every((n) => n === 1)).toBe(true);
  }, 180_000);
});

// ------------------------------------------------------------- processes

const CLI = join(REPO_ROOT, "packages/cli/src/bin.ts");

/** A `frontier shard` OS process, started again on the same data after a SIGKILL. */
class ShardProcess {
  private child: ChildProcess | undefined;
  constructor(
    private readonly args: readonly string[],
    readonly id: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", CLI, "shard", ...this.args],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (process.env["FRONTIER_TEST_LOG"]) process.stderr.write(`[${this.id}] ${chunk.toString()}`);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    await until(() => out.includes('"event":"listening"') || child.exitCode !== null, 60_000);
    if (child.exitCode !== null) throw new Error(`shard ${this.id} exited: ${out}`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
}

describe("a large workflow over two shard processes, each SIGKILLed mid-drain", () => {
  let server: NatsServer | undefined;
  let coordinator: Coordinator | undefined;
  let client: FrontierClient | undefined;
  let nc: NatsConnection | undefined;
  let dataRoot = "";
  const shards: ShardProcess[] = [];
  afterAll(async () => {
    await client?.close();
    await nc?.close();
    await coordinator?.close();
    await Promise.all(shards.map((s) => s.kill()));
    await server?.stop();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  });

  it("unblocks every dependent once: events owed by the killed sender are sent after its restart, those applied by the killed receiver are not applied again", async () => {
    server = await startNatsServer();
    dataRoot = await mkdtemp(join(tmpdir(), "frontier-large-"));
    const cluster = "largekill";
    for (let i = 0; i < 2; i++) {
      const id = `shard-${i}`;
      shards.push(
        new ShardProcess(
          [
            ...["--nats", server.url, "--cluster", cluster, "--id", id],
            ...["--data", join(dataRoot, id), "--slots", `${i}/2`, "--json", "--log-level", "warn"],
          ],
          id,
        ),
      );
    }
    await Promise.all(shards.map((s) => s.start()));
    coordinator = await startCoordinator({ natsUrl: server.url, cluster, logger: pino({ level: "silent" }) });
    await until(() => {
      const view = coordinator!.inspect();
      return view.slotsOwned === SLOT_COUNT && view.frontiers.length === 2;
    }, 30_000);
    client = await connect({ servers: server.url, cluster });
    nc = await natsConnect({ servers: server.url });
    const tasks = layeredDag("huge", 5, 120, 2);
    // Cross-shard edges there are: the test is about them.
    const owner = (t: { id: string }) => slotOfTask({ id: t.id, workflowId: "huge", large: true }) % 2;
    const crossing = tasks.filter((t) => (t.prerequisites ?? []).some((p) => owner({ id: p }) !== owner(t)));
    expect(crossing.length).toBeGreaterThan(tasks.length / 4);
    await submitAll(client, tasks, "huge");

    // 1. At a fifth done, kill shard-1: shard-0's completions now owe it events it cannot take.
    // 2. Once shard-0 owes some (its stats say so), kill it too: the owed events are on its disk
    //    only, and so are those it applied for its own slots without journaling their acks.
    //    Start shard-1, then shard-0 again: it sends every owed event (duplicates included).
    // 3. At three fifths done, kill shard-1 once more mid-flow and start it again.
    let phase: "before" | "receiverDown" | "after" | "done" = "before";
    let owedAtKill = 0;
    let downSince = 0;
    let doneAtDown = 0;
    const { completed, early } = await drain(client, tasks, async (done) => {
      const [sender, receiver] = shards as [ShardProcess, ShardProcess];
      if (process.env["FRONTIER_TEST_LOG"]) process.stderr.write(`${Date.now()} ${phase} ${done}\n`);
      if (phase === "before" && done >= tasks.length / 5) {
        await receiver.kill();
        phase = "receiverDown";
        downSince = Date.now();
        doneAtDown = done;
      } else if (phase === "receiverDown") {
        const owed = await owedBy(nc!, cluster, sender.id);
        if (owed === 0 || (done < doneAtDown + 40 && Date.now() - downSince < 4_000)) return;
        owedAtKill = owed;
        await sender.kill();
        await receiver.start();
        await sender.start();
        phase = "after";
      } else if (phase === "after" && done >= (3 * tasks.length) / 5) {
        await receiver.kill();
        await receiver.start();
        phase = "done";
      }
    });
    expect(phase).toBe("done");
    expect(owedAtKill).toBeGreaterThan(0);
    expect(early).toEqual([]);
    expect(completed.size).toBe(tasks.length);
    expect([...completed.values()].every((n) => n === 1)).toBe(true);
  }, 300_000);
});
