/**
 * Task types end to end, against a real cluster (NATS, two shard actors and
 * a coordinator from the harness): workers of different types each receive
 * only their type's tasks, in earliest-deadline-first order across both
 * shards, through the SDK and through the CLI; a worker naming no types
 * gets only untyped tasks; status, show and list say the types.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FrontierClient } from "@frontier/client";
import type { TaskInput } from "@frontier/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;
let dir: string;
let target: string[];

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "types" });
  client = await cluster.client();
  dir = await mkdtemp(join(tmpdir(), "frontier-types-"));
  target = ["--nats", cluster.url, "--cluster", cluster.cluster];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/**
 * Waits until the coordinator has heard every shard's frontier as it is now
 * (the dispatch order across shards is as current as its view: the tasks
 * were submitted before any worker starts, so this makes the order exact).
 */
async function coordinatorCaughtUp(): Promise<void> {
  await until(() => {
    const heard = new Map(cluster.coordinator.inspect().frontiers.map((f) => [f.shardId, f.runnable]));
    return cluster.shards.every((s) => heard.get(s.stats().shardId) === s.stats().shard.runnable);
  }, 15_000);
}

/** Tasks of `type` with deadlines `base + 1000·k` for each k in `ks`, ids by type and deadline. */
function tasksOf(prefix: string, type: string | undefined, base: number, ks: readonly number[]): TaskInput[] {
  return ks.map((k) => ({
    id: `${prefix}-${String(k).padStart(2, "0")}`,
    deadline: base + 1_000 * k,
    ...(type === undefined ? {} : { type }),
  }));
}

describe("task types through the SDK", () => {
  it("gives each worker only the types it names, earliest deadline first across both shards", async () => {
    const base = Date.now() + 3_600_000;
    // Interleaved deadlines across two types and the default one.
    const img = tasksOf("img", "img", base, [1, 4, 6, 9, 11, 14, 15, 18]);
    const mail = tasksOf("mail", "mail", base, [2, 3, 7, 8, 12, 13, 16, 17]);
    const plain = tasksOf("plain", undefined, base, [0, 5, 10]);
    const all = [...img, ...mail, ...plain];
    await client.submit(all);
    // Both shards hold some of each type: the order is a cross-shard one.
    for (const shard of cluster.shards) {
      const held = new Map((shard.stats().shard.types ?? []).map((t) => [t.type, t.runnable]));
      expect(held.get("img"), `img on ${shard.stats().shardId}`).toBeGreaterThan(0);
      expect(held.get("mail"), `mail on ${shard.stats().shardId}`).toBeGreaterThan(0);
    }
    await coordinatorCaughtUp();

    // Two workers, one per type, taking turns, one task per lease: every grant is in global
    // earliest-deadline-first order among the worker's types, across both shards, and of its type.
    const ran = new Map<string, string[]>([
      ["img", []],
      ["mail", []],
    ]);
    for (let turn = 0; turn < img.length + mail.length; turn++) {
      const type = turn % 2 === 0 ? "img" : "mail";
      const [lease] = await client.lease({ types: [type], owner: `worker-${type}`, max: 1 });
      expect(lease?.task.type).toBe(type);
      ran.get(type)!.push(lease!.taskId);
      await client.complete(lease!);
    }
    expect(ran.get("img")).toEqual(img.map((t) => t.id));
    expect(ran.get("mail")).toEqual(mail.map((t) => t.id));
    expect(await client.lease({ types: ["img", "mail"], max: 5 })).toEqual([]);

    // The untyped tasks are still there, counted per type, until a worker naming no types takes them.
    const stats = await client.stats();
    expect(stats.types).toEqual([{ type: "default", runnable: plain.length, leased: 0 }]);
    const plainRan: string[] = [];
    const plainWorker = client.work((task) => void plainRan.push(task.id), { waitMs: 200 });
    await until(() => plainWorker.stats.completed === plain.length);
    await plainWorker.stop();
    expect(plainRan.sort()).toEqual(plain.map((t) => t.id));
    for (const t of all) expect((await client.getTask(t.id))?.state).toBe("COMPLETED");
    expect((await client.getTask("img-01"))?.type).toBe("img");
  });

  it("runs work(handler, { types }) workers side by side, each on its own types only", async () => {
    const base = Date.now() + 7_200_000;
    const img = tasksOf("w-img", "img", base, [1, 3, 5, 7, 9, 11]);
    const mail = tasksOf("w-mail", "mail", base, [2, 4, 6, 8, 10, 12]);
    const plain = tasksOf("w-plain", undefined, base, [0]);
    await client.submit([...img, ...mail, ...plain]);
    const ran = new Map<string, string[]>([
      ["img", []],
      ["mail", []],
    ]);
    const worker = (type: string) =>
      client.work(
        (task, context) => {
          ran.get(context.type)!.push(task.id);
        },
        { types: [type], concurrency: 2, waitMs: 200, owner: `sdk-${type}` },
      );
    const workers = [worker("img"), worker("mail")];
    await until(
      () => workers[0]!.stats.completed === img.length && workers[1]!.stats.completed === mail.length,
    );
    await Promise.all(workers.map((w) => w.stop()));
    expect(ran.get("img")!.sort()).toEqual(img.map((t) => t.id));
    expect(ran.get("mail")!.sort()).toEqual(mail.map((t) => t.id));
    // The untyped task was for neither.
    expect((await client.getTask("w-plain-00"))?.state).toBe("RUNNABLE");
    await client.cancel("w-plain-00");
  });

  it("refuses a task of a bad type with VALIDATION_FAILED, changing nothing", async () => {
    const err = await client
      .submit([
        { id: "fine", deadline: Date.now() + 60_000 },
        { id: "bad-type", deadline: Date.now() + 60_000, type: "not a type" },
      ])
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string; problems?: { taskId: string; code: string }[] },
      );
    expect(err?.code).toBe("VALIDATION_FAILED");
    expect(err?.problems).toEqual([expect.objectContaining({ taskId: "bad-type", code: "MALFORMED" })]);
    expect(await client.getTask("fine")).toBeNull();
  });
});

describe("task types through the CLI", () => {
  it("frontier work --type runs only its types, earliest first; submit --type, status, show and list say them", async () => {
    const file = join(dir, "tasks.jsonl");
    const lines = [
      { id: "cli-a1", deadline: "+50m" },
      { id: "cli-b1", deadline: "+10m", type: "video" },
      { id: "cli-a2", deadline: "+20m" },
      { id: "cli-b2", deadline: "+40m", type: "audio" },
      { id: "cli-a3", deadline: "+30m" },
      { id: "cli-d1", deadline: "+5m", type: "default" },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join("\n"));
    // --type gives the tasks that name none the type "reports".
    const submitted = await frontier(["submit", file, "--type", "reports", ...target]);
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    await coordinatorCaughtUp();

    const status = await frontier(["status", ...target]);
    expect(status.stdout).toContain(
      "types (runnable/leased): audio 1/0  default 1/0  reports 3/0  video 1/0",
    );
    const show = await frontier(["show", "cli-a2", ...target]);
    expect(show.stdout).toMatch(/^ {2}type +reports$/m);
    const list = await frontier(["list", "--state", "RUNNABLE", ...target]);
    expect(list.stdout).toMatch(/^ID +STATE +DEADLINE +ATTEMPTS +WORKFLOW +TYPE +REASON$/m);
    expect(list.stdout).toMatch(/^cli-b1 +RUNNABLE .* video$/m);
    const listed = await frontier(["list", "--type", "video,audio", "--json", ...target]);
    expect((JSON.parse(listed.stdout) as { tasks: { id: string }[] }).tasks.map((t) => t.id)).toEqual([
      "cli-b1",
      "cli-b2",
    ]);

    const log = join(dir, "ran.log");
    const run = (types: string) =>
      frontier(
        [
          "work",
          "--type",
          types,
          "--concurrency",
          "1",
          "--wait-ms",
          "300",
          "--exit-when-idle",
          ...target,
          "--",
          "sh",
          "-c",
          `echo "${types} $FRONTIER_TASK_ID" >> ${log}`,
        ],
        { timeoutMs: 60_000 },
      );
    const reports = await run("reports");
    expect(reports.code).toBe(0);
    // Leasing by hand for two types: earliest first among them, one lease at a time.
    const leased: string[] = [];
    for (let i = 0; i < 3; i++) {
      const one = await frontier([
        "lease",
        "--type",
        "video",
        "--type",
        "audio,video",
        "--wait-ms",
        "0",
        ...target,
      ]);
      expect(one.code).toBe(0);
      const m = /^(\S+) +token=(\d+) +secret=(\S+) .*type=(\w+)/m.exec(one.stdout);
      if (m === null) {
        expect(one.stdout.trim()).toBe("no runnable task");
        break;
      }
      leased.push(`${m[1]} ${m[4]}`);
      const done = await frontier(["complete", m[1]!, "--token", m[2]!, "--secret", m[3]!, ...target]);
      expect(done.code).toBe(0);
    }
    expect(leased).toEqual(["cli-b1 video", "cli-b2 audio"]);
    // The worker ran its type's tasks only.
    const ranLines = (await readFile(log, "utf8")).trim().split("\n");
    expect(ranLines.sort()).toEqual(["reports cli-a1", "reports cli-a2", "reports cli-a3"]);
    // The default-type task is left for a worker naming no types.
    expect((await client.getTask("cli-d1"))?.state).toBe("RUNNABLE");
    const plain = await frontier(["lease", "--wait-ms", "0", ...target]);
    expect(plain.stdout).toMatch(/^cli-d1 /);

    const bad = await frontier(["work", "--type", "no spaces", ...target, "--", "true"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--type "no spaces" is not a task type');
  });
});
