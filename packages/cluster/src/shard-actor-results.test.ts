/**
 * Results at a shard actor, against a real nats-server: a complete's result
 * reaches its dependent's grant (by lease and by a settle's next leases),
 * survives a restart, a too-large one is refused before the shard sees it,
 * and a lease reply holding results still fits in one message.
 */

import type { Lease } from "@frontier/core";
import {
  encodedByteLength,
  encodeReply,
  LEASE_RESULTS_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_RESULT_BYTES,
  PROTOCOL_VERSION,
  subjectsFor,
} from "@frontier/protocol";
import { Packr } from "msgpackr";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { askRaw, ok, type TestActorOptions, TestEnv, task } from "../test/support.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const startActor = (extra: TestActorOptions = {}) => env.startActor(extra);

/** A string of `bytes` msgpack-encoded bytes, or near it (a few bytes of header). */
const blob = (bytes: number) => "r".repeat(bytes - 5);

describe("ShardActor results", () => {
  it("keeps a complete's result, shows it, hands it to the dependent's grant, and keeps it across a restart", async () => {
    const first = await startActor();
    const { q, wf } = first;
    ok(
      await q({
        op: "submit",
        tasks: [
          task("fetch", 1, { workflowId: wf }),
          task("build", 2, { workflowId: wf, prerequisites: ["fetch"] }),
        ],
        idempotencyKey: "k",
      }),
    );
    const leaseAsk = { op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0 } as const;
    const [lease] = ok(await q({ ...leaseAsk, requestId: "r1" })).leases;
    expect(lease?.taskId).toBe("fetch");
    expect(lease).not.toHaveProperty("results");
    const held = { taskId: "fetch", workflowId: wf, token: lease!.token, secret: lease!.secret! };
    const result = { rows: 3, files: ["a.txt"] };
    expect(ok(await q({ op: "complete", ...held, result })).duplicate).toBe(false);
    // A resent complete (its reply lost) keeps the first result.
    expect(ok(await q({ op: "complete", ...held, result: "second" })).duplicate).toBe(true);
    expect(ok(await q({ op: "getTask", taskId: "fetch", workflowId: wf })).task?.result).toEqual(result);
    await first.actor.close();

    const restarted = await startActor({
      cluster: first.cluster,
      shardId: first.shardId,
      dataDir: first.dataDir,
    });
    expect(ok(await restarted.q({ op: "getTask", taskId: "fetch", workflowId: wf })).task?.result).toEqual(
      result,
    );
    const [next] = ok(await restarted.q({ ...leaseAsk, requestId: "r2" })).leases;
    expect(next).toMatchObject({ taskId: "build", results: [{ taskId: "fetch", result }] });
  });

  it("hands results to the leases a settle grants in the same commit", async () => {
    const { q, wf } = await startActor();
    ok(
      await q({
        op: "submit",
        tasks: [
          task("a", 1, { workflowId: wf }),
          task("b", 2, { workflowId: wf }),
          task("join", 3, { workflowId: wf, prerequisites: ["b", "a"] }),
        ],
        idempotencyKey: "k",
      }),
    );
    const leases = ok(
      await q({ op: "lease", owner: "w", max: 2, leaseMs: 60_000, waitMs: 0, requestId: "r1" }),
    ).leases;
    expect(leases.map((l) => l.taskId)).toEqual(["a", "b"]);
    const completes = leases.map((l) => ({
      taskId: l.taskId,
      workflowId: wf,
      token: l.token,
      secret: l.secret!,
      result: `${l.taskId} done`,
    }));
    const settled = ok(
      await q({ op: "settle", completes, lease: { owner: "w", max: 1, leaseMs: 60_000, requestId: "r2" } }),
    );
    expect(settled.results).toEqual([{ duplicate: false }, { duplicate: false }]);
    expect(settled.leases).toHaveLength(1);
    expect(settled.leases[0]).toMatchObject({
      taskId: "join",
      results: [
        { taskId: "b", result: "b done" },
        { taskId: "a", result: "a done" },
      ],
    });
  });

  it("refuses a result above MAX_RESULT_BYTES with PAYLOAD_TOO_LARGE, leaving the lease live", async () => {
    const { nc, q, cluster, shardId, wf } = await startActor();
    ok(await q({ op: "submit", tasks: [task("a", 1, { workflowId: wf })], idempotencyKey: "k" }));
    const [lease] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r1" }),
    ).leases;
    // Raw bytes: the client's own codec would refuse to send it.
    const raw = new Packr({ useRecords: false }).pack({
      v: PROTOCOL_VERSION,
      kind: "request",
      op: "complete",
      taskId: "a",
      workflowId: wf,
      token: lease!.token,
      secret: lease!.secret!,
      result: blob(MAX_RESULT_BYTES + 10),
    });
    const reply = await askRaw(nc, subjectsFor(cluster).shard(shardId, "complete"), raw, "complete");
    expect(reply.ok ? "ok" : [reply.error.code, reply.error.message]).toEqual([
      "PAYLOAD_TOO_LARGE",
      `result: result of ${MAX_RESULT_BYTES + 10} bytes exceeds MAX_RESULT_BYTES (${MAX_RESULT_BYTES})`,
    ]);
    expect(ok(await q({ op: "getTask", taskId: "a", workflowId: wf })).task?.state).toBe("LEASED");
  });

  it("keeps a grant's results within LEASE_RESULTS_BYTES and a reply of such grants within MAX_MESSAGE_BYTES", async () => {
    const { q, wf } = await startActor();
    const prerequisites = ["p0", "p1", "p2"];
    const dependents = Array.from({ length: 10 }, (_, i) => `d${i}`);
    ok(
      await q({
        op: "submit",
        tasks: [
          ...prerequisites.map((id, i) => task(id, i, { workflowId: wf })),
          ...dependents.map((id, i) => task(id, 100 + i, { workflowId: wf, prerequisites })),
        ],
        idempotencyKey: "k",
      }),
    );
    const leases = ok(
      await q({ op: "lease", owner: "w", max: 3, leaseMs: 60_000, waitMs: 0, requestId: "r1" }),
    ).leases;
    // Each result ~60 KB: two fit in a grant's results, the third is left out.
    const size = MAX_RESULT_BYTES - 5_000;
    for (const l of leases) {
      ok(
        await q({
          op: "complete",
          taskId: l.taskId,
          workflowId: wf,
          token: l.token,
          secret: l.secret!,
          result: blob(size),
        }),
      );
    }
    const granted = ok(
      await q({ op: "lease", owner: "w", max: 10, leaseMs: 60_000, waitMs: 0, requestId: "r2" }),
    ).leases;
    // ~120 KB of results per grant: a 1 MB reply holds fewer than ten.
    expect(granted.length).toBeGreaterThan(1);
    expect(granted.length).toBeLessThan(10);
    for (const l of granted) {
      expect(l.results?.map((r) => r.taskId)).toEqual(["p0", "p1"]);
      expect(l.resultsOmitted).toBe(1);
      expect(encodedByteLength(l.results)).toBeLessThanOrEqual(LEASE_RESULTS_BYTES);
    }
    expect(encodeReply({ ok: true, op: "lease", leases: granted as Lease[] }).byteLength).toBeLessThanOrEqual(
      MAX_MESSAGE_BYTES,
    );
    // The rest are granted by the next request.
    const rest = ok(
      await q({ op: "lease", owner: "w", max: 10, leaseMs: 60_000, waitMs: 0, requestId: "r3" }),
    ).leases;
    expect(granted.length + rest.length).toBe(10);
  });
});
