/**
 * The operators' ops at a shard actor, against a real nats-server: listTasks
 * pages and their cursor (ties broken by shard id), getWorkflow with
 * prerequisites and the page byte budget, retry through the journal and a
 * restart.
 */
import { encodeReply, LIST_PAGE_BYTES, MAX_MESSAGE_BYTES } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ok, type TestActorOptions, TestEnv, task } from "../test/support.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** A shard actor "s1": a cursor from shard "s0" comes before its tasks at the same key. */
const startActor = (extra: TestActorOptions = {}) => env.startActor({ shardId: "s1", ...extra });

describe("ShardActor queries", () => {
  it("lists tasks by state in (deadline, id) order, page by page, the cursor naming the shard", async () => {
    const { q, shardId, wf } = await startActor();
    const tasks = ["e", "d", "c", "b", "a"].map((id, i) =>
      task(id, i < 2 ? 50 : 100 + i, { workflowId: wf }),
    );
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const first = ok(await q({ op: "listTasks", states: ["RUNNABLE"], limit: 2 }));
    expect(first.tasks.map((t) => [t.id, t.deadline])).toEqual([
      ["d", 50],
      ["e", 50],
    ]);
    expect(first.next).toEqual({ deadline: 50, id: "e", shardId });
    const second = ok(await q({ op: "listTasks", states: ["RUNNABLE"], after: first.next!, limit: 10 }));
    expect(second.tasks.map((t) => t.id)).toEqual(["c", "b", "a"]);
    expect(second.next).toBeNull();
    expect(ok(await q({ op: "listTasks", states: ["FAILED"], limit: 10 })).tasks).toEqual([]);
    // A cursor from a shard ordered before this one: the task at it is this shard's, still to list.
    const tie = { deadline: 50, id: "e" };
    const fromBefore = ok(await q({ op: "listTasks", after: { ...tie, shardId: "s0" }, limit: 1 }));
    expect(fromBefore.tasks.map((t) => t.id)).toEqual(["e"]);
    const fromAfter = ok(await q({ op: "listTasks", after: { ...tie, shardId: "s2" }, limit: 1 }));
    expect(fromAfter.tasks.map((t) => t.id)).toEqual(["c"]);
    expect(
      ok(await q({ op: "listTasks", deadlineFrom: 100, deadlineTo: 103, limit: 10 })).tasks.map((t) => t.id),
    ).toEqual(["c"]);
  });

  it("retries a failed task, durably: after a restart it is runnable from attempt 1", async () => {
    const first = await startActor();
    const { q, wf } = first;
    ok(
      await q({
        op: "submit",
        tasks: [task("x", 5, { workflowId: wf, maxAttempts: 1 })],
        idempotencyKey: "k",
      }),
    );
    const [lease] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r" }),
    ).leases;
    ok(
      await q({
        op: "fail",
        taskId: "x",
        workflowId: wf,
        token: lease!.token,
        secret: lease!.secret!,
        retryable: true,
        reason: "disk full",
      }),
    );
    const failed = ok(await q({ op: "listTasks", states: ["FAILED"], limit: 10 })).tasks;
    expect(failed).toEqual([
      {
        id: "x",
        workflowId: wf,
        state: "FAILED",
        deadline: 5,
        attempts: 1,
        maxAttempts: 1,
        reason: "failed after 1 attempt(s): disk full",
        finishedAt: expect.any(Number),
      },
    ]);
    expect(ok(await q({ op: "retry", taskId: "x", workflowId: wf })).state).toBe("RUNNABLE");
    const again = await q({ op: "retry", taskId: "x", workflowId: wf });
    expect(again.ok ? "ok" : [again.error.code, again.error.message]).toEqual([
      "INVALID_STATE",
      'cannot retry task "x": it is RUNNABLE, not ended badly',
    ]);
    await first.actor.close();

    const restarted = await startActor({
      cluster: first.cluster,
      shardId: first.shardId,
      dataDir: first.dataDir,
    });
    const [next] = ok(
      await restarted.q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r2" }),
    ).leases;
    expect([next?.taskId, next?.attempt]).toEqual(["x", 1]);
  });

  it("gives a workflow's graph, cutting a page at LIST_PAGE_BYTES and resuming after it", async () => {
    const { q, shardId, wf } = await startActor();
    // 1000 prerequisites with ids at the length limit: each dependent is ~260 KB in a page.
    const ids = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, "0")}${"p".repeat(252)}`);
    ok(
      await q({
        op: "submit",
        tasks: ids.map((id) => task(id, 1_000, { workflowId: wf })),
        idempotencyKey: "p",
      }),
    );
    const dependents = ["d1", "d2", "d3"].map((id, i) =>
      task(id, i + 1, { workflowId: wf, prerequisites: ids }),
    );
    ok(await q({ op: "submit", tasks: dependents, idempotencyKey: "d" }));

    const page = ok(await q({ op: "getWorkflow", workflowId: wf, limit: 1000 }));
    // The budget holds fewer than the three dependents; the first always goes in.
    expect(page.tasks.length).toBeGreaterThanOrEqual(1);
    expect(page.tasks.length).toBeLessThan(3);
    expect(page.tasks[0]!).toMatchObject({ id: "d1", state: "WAITING", prerequisites: ids });
    const last = page.tasks.at(-1)!;
    expect(page.next).toEqual({ deadline: last.deadline, id: last.id, shardId });
    expect(encodeReply(page).byteLength).toBeLessThan(MAX_MESSAGE_BYTES);

    // Paging on from each `next` sees every task of the workflow once, in order.
    const seen = page.tasks.map((t) => t.id);
    for (let next = page.next; next !== null; ) {
      const more = ok(await q({ op: "getWorkflow", workflowId: wf, after: next, limit: 1000 }));
      expect(encodeReply(more).byteLength).toBeLessThan(LIST_PAGE_BYTES + 4_096);
      seen.push(...more.tasks.map((t) => t.id));
      next = more.next;
    }
    expect(seen).toEqual(["d1", "d2", "d3", ...ids]);
    expect(ok(await q({ op: "getWorkflow", workflowId: "no-such-workflow", limit: 10 }))).toMatchObject({
      tasks: [],
      next: null,
    });
  });
});
