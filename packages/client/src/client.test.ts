import { InvalidArgumentError, StaleLeaseError, ValidationError } from "@frontier/core";
import {
  decodeRequest,
  encodeReply,
  encodeRequest,
  isRetryable,
  MAX_PAYLOAD_BYTES,
  ProtocolError,
  type RequestOf,
  subjectsFor,
} from "@frontier/protocol";
import type { Msg } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { useEngineCluster } from "../test/engine-cluster.js";
import { startEngineCoordinator } from "../test/engine-coordinator.js";
import { refOf, type WorkerChannel } from "./client.js";
import { ClientError, ClientErrorCode, connect, NoRespondersError, RequestTimeoutError } from "./index.js";

const harness = useEngineCluster("client");
const { setup } = harness;

describe("connect", () => {
  it("rejects with CONNECT_FAILED when nothing listens", async () => {
    const err = await connect({ servers: "nats://127.0.0.1:1", connectTimeoutMs: 500 }).catch((e) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe(ClientErrorCode.CONNECT_FAILED);
    expect(err.message).toContain("nats://127.0.0.1:1");
  });

  it("names the bad option", async () => {
    await expect(connect({ servers: harness.server.url, cluster: "no.dots" })).rejects.toThrow(
      /option cluster/,
    );
    await expect(connect({ servers: harness.server.url, requestTimeoutMs: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe("requests", () => {
  it("submits, leases, heartbeats, completes, and reads tasks and stats", async () => {
    const { coord, client } = await setup();
    const r = await client.submit([
      { id: "a", deadline: 2 },
      { id: "b", deadline: 1, workflowId: "w" },
    ]);
    expect(r).toMatchObject({ accepted: 2, replayed: false });
    expect(r.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);

    const [lease] = await client.lease({ max: 1, leaseMs: 5_000 });
    expect(lease?.taskId).toBe("b");
    const hb = await client.heartbeat(lease!, { leaseMs: 10_000 });
    expect(hb.expiresAt).toBeGreaterThan(Date.now() + 5_000);
    // The lease's workflowId goes along, so the cluster routes without a lookup.
    const sent = coord.requests.find((q) => q.op === "heartbeat");
    expect(sent).toMatchObject({ taskId: "b", workflowId: "w" });
    expect(await client.complete(lease!)).toEqual({ duplicate: false });
    expect(await client.complete(lease!)).toEqual({ duplicate: true });

    expect((await client.getTask("b", { workflowId: "w" }))?.state).toBe("COMPLETED");
    expect(await client.getTask("nope")).toBeNull();
    await client.updateDeadline("a", 50);
    expect((await client.getTask("a"))?.deadline).toBe(50);
    await client.cancel("a", { reason: "changed my mind" });
    expect((await client.getTask("a"))?.reason).toBe("changed my mind");
    const stats = await client.stats();
    expect(stats.counts.COMPLETED).toBe(1);
    expect(stats.counts.CANCELLED).toBe(1);
    expect(stats.shards).toEqual({ answered: ["engine"], missing: [] });
    await client.close();
    await coord.close();
  });

  it("says which shards the stats cover, and which did not answer", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "a", deadline: 1 }]);
    coord.coverage = {
      answered: ["shard-0", "shard-2"],
      missing: [
        { shardId: "shard-1", code: "TIMEOUT" },
        { shardId: "shard-3", code: "SHARD_UNAVAILABLE" },
      ],
    };
    const partial = await client.stats();
    expect(partial.runnable).toBe(1);
    expect(partial.shards).toEqual(coord.coverage);
    // A coordinator that does not say: both lists empty, the stats as they are.
    coord.coverage = null;
    const unsaid = await client.stats();
    expect(unsaid.shards).toEqual({ answered: [], missing: [] });
    expect(unsaid.counts.RUNNABLE).toBe(1);
    await client.close();
    await coord.close();
  });

  it("fails a leased task, retryably or for good", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "r", deadline: 1, maxAttempts: 3 },
      { id: "f", deadline: 2, maxAttempts: 3 },
    ]);
    const leases = await client.lease({ max: 2 });
    expect(await client.fail(leases[0]!, { reason: "flaky" })).toEqual({ state: "WAITING" });
    expect(await client.fail(leases[1]!, { retryable: false, reason: "bad input" })).toEqual({
      state: "FAILED",
    });
    await client.close();
    await coord.close();
  });

  it("releases a held lease: runnable again as the same attempt, the released token fenced", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "r", deadline: 1, maxAttempts: 1 }]);
    const [first] = await client.lease();
    expect(await client.release(first!)).toEqual({ duplicate: false });
    // Sent again (as after a lost reply): the same success, nothing changed.
    expect(await client.release(first!)).toEqual({ duplicate: true });
    expect(await client.getTask("r")).toMatchObject({ state: "RUNNABLE", attempts: 0, released: true });
    expect(await client.complete(first!).catch((e) => e)).toBeInstanceOf(StaleLeaseError);
    // Its one attempt not spent: leased again, and completed.
    const [second] = await client.lease({ owner: "other" });
    expect(second).toMatchObject({ taskId: "r", attempt: 1 });
    expect(await client.release(first!).catch((e) => e)).toBeInstanceOf(StaleLeaseError);
    expect(await client.complete(second!)).toEqual({ duplicate: false });
    // A lease's fields do as well as the lease, and a missing secret is refused before sending.
    await expect(client.release({ taskId: "r", token: 1, secret: "" })).rejects.toThrow(/no secret/);
    expect(coord.seen.get("release")).toBe(3);
    await client.close();
    await coord.close();
  });

  it("retries a release whose reply was lost, and the resend is answered as a duplicate", async () => {
    const { coord, client } = await setup({ requestTimeoutMs: 200 });
    await client.submit([{ id: "r", deadline: 1 }]);
    const [lease] = await client.lease();
    let sends = 0;
    // The first send is applied and its reply lost.
    coord.script = (q) => {
      if (q.op !== "release" || sends++ > 0) return undefined;
      coord.engine.release(q.taskId, q.token);
      return { action: "drop" };
    };
    expect(await client.release(lease!)).toEqual({ duplicate: true });
    expect(sends).toBe(2);
    expect(coord.engine.getTask("r")).toMatchObject({ state: "RUNNABLE", attempts: 0 });
    await client.close();
    await coord.close();
  });

  it("throws the typed error of an error reply, and does not retry it", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "x", deadline: 1 }]);
    const err = await client.submit([{ id: "x", deadline: 1 }]).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.problems[0]).toMatchObject({ taskId: "x", code: "DUPLICATE_ID" });
    expect(coord.seen.get("submit")).toBe(2);

    const stale = await client
      .complete({ taskId: "x", token: 99, secret: "AAAAAAAAAAAAAAAAAAAAAA" })
      .catch((e) => e);
    expect(stale).toBeInstanceOf(StaleLeaseError);
    expect(isRetryable(stale)).toBe(false);
    expect(coord.seen.get("complete")).toBe(1);
    await client.close();
    await coord.close();
  });

  it("refuses a bad request before sending it", async () => {
    const { coord, client } = await setup();
    const big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
    const err = await client.submit([{ id: "big", deadline: 1, payload: big }]).catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe("PAYLOAD_TOO_LARGE");
    const wrong = await client.submit([{ id: "t", deadline: "soon" as unknown as number }]).catch((e) => e);
    expect(wrong.code).toBe("BAD_MESSAGE");
    expect(wrong.message).toContain("tasks[0].deadline");
    expect(coord.seen.get("submit")).toBeUndefined();
    await client.close();
    await coord.close();
  });

  it("retries a timed-out submit with the same idempotency key, and the cluster applies it once", async () => {
    const { coord, client } = await setup({ requestTimeoutMs: 200 });
    let dropped = 0;
    coord.script = (q) => (q.op === "submit" && dropped++ === 0 ? { action: "drop" } : undefined);
    const r = await client.submit([{ id: "once", deadline: 1 }]);
    const keys = coord.requests.filter((q) => q.op === "submit").map((q) => q.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).toBe(r.idempotencyKey);
    expect(r.accepted).toBe(1);
    await client.close();
    await coord.close();
  });

  it("retries a timed-out lease with the same request id, and gets the first grant", async () => {
    const { coord, client } = await setup({ requestTimeoutMs: 200 });
    await client.submit([{ id: "only", deadline: 1 }]);
    // The first lease's reply comes too late: held until its resend has arrived.
    let resent!: () => void;
    const resend = new Promise<void>((resolve) => (resent = resolve));
    let calls = 0;
    coord.script = (q) => {
      if (q.op !== "lease") return undefined;
      if (calls++ === 0) return { action: "hold", until: resend };
      resent();
      return undefined;
    };
    const leases = await client.lease({ max: 1 });
    expect(leases.map((l) => l.taskId)).toEqual(["only"]);
    const ids = coord.requests.filter((q) => q.op === "lease").map((q) => q.requestId);
    expect(new Set(ids).size).toBe(1);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    // Only the resends say they may have been granted already, each with its own number.
    const attempts = coord.requests.filter((q) => q.op === "lease").map((q) => q.attempt);
    expect(attempts).toEqual([undefined, ...ids.slice(1).map((_, i) => i + 2)]);
    await client.close();
    await coord.close();
  });

  it("asks a coordinator for a settle's grant that left with its slot before the resend (grantsMoved)", async () => {
    const { coord, client, cluster } = await setup({ requestTimeoutMs: 200 });
    await client.submit([
      { id: "first", deadline: 1 },
      { id: "second", deadline: 2 },
    ]);
    coord.grantShard = "s9";
    const [first] = await client.lease({ max: 1 });
    const channel = client as unknown as WorkerChannel;
    expect(channel.routeOf(first!)).toBe("s9");
    // Shard s9: the first send is applied and granted, and its reply lost; the grant's slot then
    // moves — here: the grant is made through the coordinator, which hands it back to the
    // request id's next send, as a coordinator's replay-only lookup finds it at its new shard.
    const sends: (number | undefined)[] = [];
    let granted: Promise<unknown> | undefined;
    const subjects = subjectsFor(cluster);
    const shard = harness.nc.subscribe(subjects.shard("s9", "settle"), {
      callback: (_err, msg) => void answer(msg),
    });
    const answer = async (msg: Msg): Promise<void> => {
      const request = decodeRequest(msg.data, "settle") as RequestOf<"settle">;
      sends.push(request.lease?.attempt);
      if (request.lease?.attempt === undefined) {
        coord.engine.complete(first!.taskId, first!.token);
        const { owner, requestId } = request.lease!;
        const grant = { op: "lease", owner, requestId, max: 1, leaseMs: 60_000, waitMs: 0 } as const;
        granted = harness.nc.request(subjects.coord("lease"), encodeRequest(grant), { timeout: 5_000 });
        return;
      }
      await granted; // the grant is made before the resend is answered
      msg.respond(
        encodeReply({
          ok: true,
          op: "settle",
          results: [{ duplicate: true }],
          leases: [],
          grantsMoved: true,
        }),
      );
    };
    await harness.nc.flush(); // s9 listens before the first send goes out
    const reply = await channel.settle("s9", [refOf(first!)], {
      owner: client.name,
      max: 1,
      leaseMs: 60_000,
      requestId: "settle-1",
    });
    shard.unsubscribe();
    expect(reply.results).toEqual([{ duplicate: true }]);
    expect(reply.leases.map((l) => l.taskId)).toEqual(["second"]);
    expect(sends).toEqual([undefined, 2]);
    // The coordinator was asked under the settle's request id, as its next send.
    const asked = coord.requests.filter(
      (q): q is RequestOf<"lease"> => q.op === "lease" && q.requestId === "settle-1",
    );
    expect(asked.map((q) => q.attempt)).toEqual([undefined, 3]);
    await client.close();
    await coord.close();
  });

  it("goes on numbering the sends under a caller's request id across calls, so a later call is a resend", async () => {
    const { coord, client } = await setup({
      requestTimeoutMs: 150,
      retry: { attempts: 2, baseMs: 1, maxMs: 2 },
    });
    await client.submit([{ id: "only", deadline: 1 }]);
    // The first call's two sends get no reply: it gives up, and the caller calls again under the id.
    coord.script = (q) => (q.op === "lease" ? { action: "drop" } : undefined);
    await expect(client.lease({ requestId: "mine" })).rejects.toBeInstanceOf(RequestTimeoutError);
    coord.script = null;
    expect((await client.lease({ requestId: "mine" })).map((l) => l.taskId)).toEqual(["only"]);
    const sends = (id: string) =>
      coord.requests
        .filter((q): q is RequestOf<"lease"> => q.op === "lease" && q.requestId === id)
        .map((q) => q.attempt);
    expect(sends("mine")).toEqual([undefined, 2, 3]);
    // Per owner, and a call without an id of its own starts at 1.
    await client.lease({ requestId: "mine", owner: "someone-else" });
    expect(sends("mine").at(-1)).toBeUndefined();
    await client.lease();
    expect(coord.requests.at(-1)).toMatchObject({ op: "lease" });
    expect(coord.requests.at(-1)).not.toHaveProperty("attempt");
    await client.close();
    await coord.close();
  });

  it("remembers the numbering of the 10,000 most recently used request ids, and forgets older ones", async () => {
    const { coord, client } = await setup({
      requestTimeoutMs: 150,
      retry: { attempts: 2, baseMs: 1, maxMs: 2 },
    });
    await client.submit(["a", "b", "c"].map((id) => ({ id, deadline: 1 })));
    // Private on purpose: 10,000 lease calls only to fill the table would be slow; the calls
    // under test are real ones.
    const track = (id: string) =>
      (client as unknown as { trackLeaseId(owner: string, id: string): number }).trackLeaseId(
        client.name,
        id,
      );
    coord.script = (q) => (q.op === "lease" ? { action: "drop" } : undefined);
    for (const id of ["kept", "forgotten"])
      await expect(client.lease({ requestId: id })).rejects.toBeInstanceOf(RequestTimeoutError);
    coord.script = null;
    // "kept" is used again after "forgotten": it is the more recent of the two.
    track("kept");
    for (let i = 0; i < 9_999; i++) track(`other-${i}`);
    // 10,001 ids used: the least recent, "forgotten", is gone; "kept" is the 10,000th most recent.
    await client.lease({ requestId: "kept" });
    await client.lease({ requestId: "forgotten" });
    const last = (id: string) =>
      coord.requests.filter((q): q is RequestOf<"lease"> => q.op === "lease" && q.requestId === id).at(-1);
    expect(last("kept")?.attempt).toBe(3);
    expect(last("forgotten")?.attempt).toBeUndefined();
    await client.close();
    await coord.close();
  });

  it("retries retryable error replies and gives up after the attempts", async () => {
    const { coord, client } = await setup({ retry: { attempts: 3, baseMs: 1, maxMs: 2 } });
    let n = 0;
    coord.script = (q) =>
      q.op === "stats" && n++ < 2 ? { action: "error", code: "SHARD_UNAVAILABLE" } : undefined;
    expect((await client.stats()).runnable).toBe(0);
    expect(coord.seen.get("stats")).toBe(3);

    coord.script = () => ({ action: "error", code: "SHARD_UNAVAILABLE" });
    const err = await client.stats().catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe("SHARD_UNAVAILABLE");
    expect(coord.seen.get("stats")).toBe(6);
    await client.close();
    await coord.close();
  });

  it("retries a submit a shard refused as OVERLOADED (at a limit, nothing applied) under the same idempotency key", async () => {
    const { coord, client } = await setup({ retry: { attempts: 4, baseMs: 1, maxMs: 2 } });
    let n = 0;
    coord.script = (q) =>
      q.op === "submit" && n++ < 2 ? { action: "error", code: "OVERLOADED" } : undefined;
    const r = await client.submit([{ id: "late", deadline: 5 }]);
    expect(r).toMatchObject({ accepted: 1, replayed: false });
    const sent = coord.requests.filter((q) => q.op === "submit");
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((q) => (q as RequestOf<"submit">).idempotencyKey))).toEqual(
      new Set([r.idempotencyKey]),
    );
    await client.close();
    await coord.close();
  });

  it("rejects a garbage reply as BAD_MESSAGE without retrying", async () => {
    const { coord, client } = await setup();
    coord.script = () => ({ action: "garbage" });
    const err = await client.stats().catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe("BAD_MESSAGE");
    expect(coord.seen.get("stats")).toBe(1);
    await client.close();
    await coord.close();
  });
});

describe("transport errors", () => {
  it("tells no responders from a timeout by class", async () => {
    const client = await connect({
      servers: harness.server.url,
      cluster: "nobody-home",
      retry: { attempts: 2, baseMs: 1, maxMs: 1 },
    });
    const none = await client.stats().catch((e) => e);
    expect(none).toBeInstanceOf(NoRespondersError);
    expect(none).toBeInstanceOf(ProtocolError);
    expect(none).not.toBeInstanceOf(RequestTimeoutError);
    expect(none.code).toBe("NO_RESPONDERS");
    expect(none.name).toBe("NoRespondersError");
    expect(none.subject).toBe("frontier.nobody-home.coord.stats");
    expect(isRetryable(none)).toBe(true);

    // A responder that never answers: a timeout, not "no responders".
    const sub = harness.nc.subscribe("frontier.silent.coord.*", { callback: () => {} });
    await harness.nc.flush();
    const silent = await connect({
      servers: harness.server.url,
      cluster: "silent",
      requestTimeoutMs: 100,
      retry: { attempts: 2, baseMs: 1, maxMs: 1 },
    });
    const timedOut = await silent.stats().catch((e) => e);
    expect(timedOut).toBeInstanceOf(RequestTimeoutError);
    expect(timedOut).not.toBeInstanceOf(NoRespondersError);
    expect(timedOut.code).toBe("TIMEOUT");
    expect(timedOut.timeoutMs).toBe(100);
    sub.unsubscribe();
    await client.close();
    await silent.close();
  });

  it("shows the caller's stack on a timeout, not the timer's", async () => {
    const sub = harness.nc.subscribe("frontier.stacks.coord.*", { callback: () => {} });
    await harness.nc.flush();
    const client = await connect({
      servers: harness.server.url,
      cluster: "stacks",
      requestTimeoutMs: 50,
      retry: { attempts: 1 },
    });
    async function askForStatsFromHere() {
      return client.stats();
    }
    const err = await askForStatsFromHere().catch((e) => e);
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect(err.stack).toMatch(/^RequestTimeoutError: stats: no reply/);
    expect(err.stack).toContain("askForStatsFromHere");
    sub.unsubscribe();
    await client.close();
  });

  it("stops retrying when the signal aborts", async () => {
    const client = await connect({
      servers: harness.server.url,
      cluster: "abort-me",
      retry: { attempts: 100, baseMs: 50, maxMs: 50 },
    });
    const err = await client.stats({ signal: AbortSignal.timeout(120) }).catch((e) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe(ClientErrorCode.ABORTED);
    await client.close();
  });

  it("rejects requests after close", async () => {
    const { coord, client } = await setup();
    await client.close();
    await client.close();
    const err = await client.stats().catch((e) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe(ClientErrorCode.CLOSED);
    expect(() => client.work(() => {})).toThrow(ClientError);
    await coord.close();
  });

  it("leaves a connection it was given open", async () => {
    const cluster = harness.freshCluster();
    const coord = startEngineCoordinator(harness.nc, cluster);
    const client = await connect({ nats: harness.nc, cluster });
    expect((await client.stats()).runnable).toBe(0);
    await client.close();
    expect(harness.nc.isClosed()).toBe(false);
    await coord.close();
  });
});
