/**
 * Recurring tasks end to end: `frontier schedule add` writes a schedule,
 * two coordinators both submit its ticks, and each tick's task is accepted
 * once, with the schedule's deadline, workflow and payload; `list` shows it,
 * `remove` stops it, and bad input is refused in one line, changing nothing.
 * A cron schedule's ticks are named by their time, so a coordinator started
 * later (a restart) submits the same tick under the same id and key.
 */
import { startCoordinator } from "@frontier/coordinator";
import { scheduledTaskId } from "@frontier/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let second: Awaited<ReturnType<typeof startCoordinator>>;

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "sched" });
  // A second coordinator: every coordinator submits each tick; the shard takes it once.
  second = await startCoordinator({
    natsUrl: cluster.url,
    cluster: "sched",
    logger: pino({ level: "silent" }),
  });
}, 60_000);

afterAll(async () => {
  await second?.close();
  await cluster?.stop();
});

const cli = (args: string[]) => frontier(["schedule", ...args, "--nats", cluster.url, "--cluster", "sched"]);

describe("frontier schedule", () => {
  it("runs a schedule's ticks once each, with its deadline, workflow and payload, until removed", async () => {
    const startAt = Date.now() - 10_500; // ten ticks ago: only the latest missed one is made up
    const added = await cli([
      ...["add", "nightly", "--every", "1s", "--deadline", "+30s", "--start", String(startAt)],
      ...["--workflow", "reports", "--payload", '{"report":"daily"}'],
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('schedule "nightly": every 1s');
    const listed = JSON.parse((await cli(["list", "--json"])).stdout) as { id: string }[];
    expect(listed.map((s) => s.id)).toEqual(["nightly"]);

    const client = await cluster.client();
    const task = (k: number) => client.getTask(scheduledTaskId("nightly", k), { workflowId: "reports" });
    // The first tick submitted is the latest due when a coordinator loaded the schedule (ten or
    // more: the command takes its time), then each next one on time.
    let first = -1;
    await until(async () => {
      for (let k = 8; k < 40 && first < 0; k++) if ((await task(k)) !== null) first = k;
      return first >= 0;
    }, 15_000);
    expect(first).toBeGreaterThanOrEqual(10);
    await until(async () => (await task(first + 2)) !== null, 15_000);
    for (const k of [first, first + 1, first + 2]) {
      const view = await task(k);
      expect(view).toMatchObject({ workflowId: "reports", payload: { report: "daily" } });
      expect(view?.deadline).toBe(startAt + k * 1_000 + 30_000);
    }
    // Ticks missed before the schedule was loaded are not made up, beyond the latest.
    expect(await task(first - 1)).toBeNull();

    const removed = await cli(["remove", "nightly"]);
    expect(removed.code, removed.stderr).toBe(0);
    const after = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // two periods: no tick may come
    const lastTick = Math.floor((after - startAt) / 1_000);
    expect(await task(lastTick + 2)).toBeNull();
    expect((await cli(["list"])).stdout).toContain("no schedules");
  });

  it("runs a cron schedule's ticks once each, named by their time, across a coordinator's restart", async () => {
    const added = await cli([
      ...["add", "tick", "--cron", "*/1 * * * * *", "--tz", "Europe/Paris", "--deadline", "+30s"],
      ...["--workflow", "cron-ticks"],
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('schedule "tick": cron "*/1 * * * * *" in Europe/Paris, next tick 20');
    expect((await cli(["list"])).stdout).toMatch(
      /^tick {2}cron "\*\/1 \* \* \* \* \*" in Europe\/Paris, next 20/m,
    );

    const client = await cluster.client();
    const ticks = async () => (await client.getWorkflow("cron-ticks", { limit: 1_000 })).tasks;
    await until(async () => (await ticks()).length >= 2, 15_000);
    // A coordinator restarts: loaded anew, it submits the latest tick due, which the other has
    // submitted already under the same id and key, and goes on with the next ones.
    await second.close();
    second = await startCoordinator({
      natsUrl: cluster.url,
      cluster: "sched",
      logger: pino({ level: "silent" }),
    });
    const before = (await ticks()).length;
    await until(async () => (await ticks()).length >= before + 2, 15_000);
    expect((await cli(["remove", "tick"])).code).toBe(0);

    const tasks = await ticks();
    for (const t of tasks) {
      const at = Number(/^tick-(\d+)$/.exec(t.id)?.[1]);
      expect(at % 1_000, t.id).toBe(0); // on a whole second
      expect(t.deadline, t.id).toBe(at + 30_000);
    }
    // One task per tick: two coordinators (one of them restarted) never made two of one tick.
    expect(new Set(tasks.map((t) => t.deadline)).size).toBe(tasks.length);
  });

  it("refuses a bad schedule in one line, and a removal of none", async () => {
    const fast = await cli(["add", "spam", "--every", "10ms", "--deadline", "1s"]);
    expect(fast.code).toBe(2);
    expect(fast.stderr).toMatch(/--every must be from 1s to 366d, got 10ms/);
    const badId = await cli(["add", "a.b", "--every", "1s", "--deadline", "1s"]);
    expect(badId.code).toBe(2);
    const badCron = await cli(["add", "bad", "--cron", "61 * * * *", "--deadline", "1s"]);
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toMatch(/schedule cron: "61 \* \* \* \*" is not a cron expression .*minute: 61/);
    expect(badCron.stderr.trim().split("\n")).toHaveLength(1);
    const badZone = await cli([
      "add",
      "bad",
      "--cron",
      "* * * * *",
      "--tz",
      "Mars/Olympus",
      "--deadline",
      "1s",
    ]);
    expect(badZone.code).toBe(2);
    expect(badZone.stderr).toMatch(/timeZone: an IANA time zone/);
    const none = await cli(["remove", "never-added"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no schedule "never-added"/);
    expect((await cli(["list"])).stdout).toContain("no schedules");
  });
});
