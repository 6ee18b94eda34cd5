/**
 * The attacks of issue 10 ("Secure"), against a cluster as `frontier start`
 * runs it out of the box: its own nats-server, admitting each role with the
 * key it generated. The attacker holds a real credential — a worker's or a
 * submitter's, the ones handed out most — and a plain NATS client, and tries
 * what was possible before the roles. docs/security.md has the table.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClientError, connect, type FrontierClient } from "@frontier/client";
import {
  COORDINATOR_QUEUE,
  decodeReply,
  encodeRequest,
  type Request,
  slotOf,
  subjectsFor,
} from "@frontier/protocol";
import { accessOf, natsConnectionOptions, type Principal } from "@frontier/transport";
import { connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type StartedFrontier, startFrontier, until } from "./harness.js";

const CLUSTER = "attacked";
const s = subjectsFor(CLUSTER);
let dir: string;
let natsUrl: string;
let started: StartedFrontier | undefined;
const clients: FrontierClient[] = [];
const raw: Awaited<ReturnType<typeof natsConnect>>[] = [];

const credentials = () => join(dir, "data", "credentials");

async function client(role: Principal["role"] & ("worker" | "submitter" | "admin")): Promise<FrontierClient> {
  const c = await connect({
    servers: natsUrl,
    cluster: CLUSTER,
    ...accessOf(credentials(), CLUSTER, { role }),
    retry: { attempts: 2, baseMs: 50, maxMs: 100 },
  });
  clients.push(c);
  return c;
}

/** A plain NATS connection with the credentials of `principal`: what an attacker holding them has. */
async function plain(principal: Principal) {
  const nc = await natsConnect({
    ...natsConnectionOptions(natsUrl, accessOf(credentials(), CLUSTER, principal)),
    maxReconnectAttempts: 0,
  });
  raw.push(nc);
  return nc;
}

/** Sends `request` on `subject`: the decoded reply, or the error the request failed with. */
async function send(nc: Awaited<ReturnType<typeof plain>>, subject: string, request: Request) {
  try {
    const msg = await nc.request(subject, encodeRequest(request), { timeout: 2_000 });
    return { reply: decodeReply(msg.data, request.op) };
  } catch (error) {
    return { error: error as Error };
  }
}

const refusedByNats = (outcome: { error?: Error }) =>
  /permissions violation/i.test(String(outcome.error?.message ?? ""));

/**
 * The server answers a SUB, refusal included, before the PONG of a PING sent after it: once a
 * flush has come back, a refusal has arrived or never will (no wait for one).
 */
async function subscriptionRefused(nc: Awaited<ReturnType<typeof plain>>, subject: string, queue?: string) {
  const sub = nc.subscribe(subject, queue === undefined ? {} : { queue });
  let refused = false;
  void sub.closed.then(() => {
    refused = true;
  });
  await nc.flush();
  await nc.flush(); // the closing, a step behind the refusal, has run too
  sub.unsubscribe();
  return refused;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-attacked-"));
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  started = await startFrontier(["--nats", natsUrl, "--cluster", CLUSTER, "--data", join(dir, "data")]);
  const admin = await client("admin");
  await until(async () => {
    try {
      return (await admin.stats()).shards.answered.length === 2;
    } catch {
      return false;
    }
  }, 30_000);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all(raw.map((nc) => nc.close().catch(() => undefined)));
  await started?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("frontier start, out of the box", () => {
  it("runs with the keys it generated, and refuses a client without one", async () => {
    expect((started!.listening as { credentials: string }).credentials).toBe(credentials());
    await expect(natsConnect({ servers: natsUrl, maxReconnectAttempts: 0 })).rejects.toThrow(
      /authorization/i,
    );
  });

  it("serves each role what it is for: a submitter submits, a worker works (completes straight at the shard)", async () => {
    const submitter = await client("submitter");
    await submitter.submit([
      { id: "first", deadline: 1, workflowId: "w" },
      { id: "second", deadline: 2, workflowId: "w", prerequisites: ["first"] },
    ]);
    const worker = await client("worker");
    const done: string[] = [];
    const w = worker.work(async (task) => {
      done.push(task.id);
    });
    await until(() => done.length === 2, 20_000);
    await w.stop();
    expect(done).toEqual(["first", "second"]);
    expect((await submitter.getTask("second", { workflowId: "w" }))?.state).toBe("COMPLETED");
  });
});

describe("a worker's credentials in an attacker's hands", () => {
  it("cannot call a shard's operations other than a lease holder's: no lease, read, cancel, deadline, prepare, commit, abort, check, submit", async () => {
    const nc = await plain({ role: "worker" });
    const requests: Request[] = [
      { op: "lease", owner: "victim", max: 10, leaseMs: 60_000, waitMs: 0, requestId: "victims-request" },
      { op: "getTask", taskId: "first", workflowId: "w" },
      { op: "cancel", taskId: "first", workflowId: "w" },
      { op: "updateDeadline", taskId: "first", workflowId: "w", deadline: 1 },
      { op: "prepare", tasks: [{ id: "squat", deadline: 1, prerequisites: [] }], idempotencyKey: "k" },
      { op: "commit", idempotencyKey: "k" },
      { op: "abort", idempotencyKey: "k" },
      // A check reserves nothing, but answers which ids a shard holds: a coordinator's alone.
      { op: "check", tasks: [{ id: "first", deadline: 1, workflowId: "w" }] },
      { op: "submit", tasks: [{ id: "x", deadline: 1, prerequisites: [] }], idempotencyKey: "k2" },
      { op: "stats" },
      // Moving a slot is an admin's, through a coordinator; handing tasks to a shard, a shard's.
      { op: "moveSlot", slot: 0, target: "shard-1", moveId: "m" },
      {
        op: "adopt",
        moveId: "planted",
        slot: 0,
        source: "shard-1",
        part: 0,
        parts: 1,
        tasks: [
          {
            spec: {
              id: "planted",
              prerequisites: [],
              maxAttempts: 1,
              hardDeadline: false,
              onPrerequisiteFailure: "cancel",
            },
            status: { state: "RUNNABLE", deadline: 1, attempts: 0, token: 0, runnableSince: 1 },
          },
        ],
        entries: [],
        leases: [],
      },
    ];
    for (const shardId of ["shard-0", "shard-1"]) {
      for (const request of requests) {
        expect([
          shardId,
          request.op,
          refusedByNats(await send(nc, s.shard(shardId, request.op), request)),
        ]).toEqual([shardId, request.op, true]);
      }
    }
  });

  it("cannot submit, cancel, re-deadline or read tasks through a coordinator", async () => {
    const worker = await client("worker");
    const calls = [
      () => worker.submit([{ id: "injected", deadline: 1 }]),
      () => worker.cancel("second", { workflowId: "w" }),
      () => worker.updateDeadline("second", 1e12, { workflowId: "w" }),
      () => worker.getTask("second", { workflowId: "w" }),
      () => worker.stats(),
      () => worker.moveSlot(0, "shard-1"),
    ];
    for (const call of calls) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect((error as ClientError).code).toBe("PERMISSION_DENIED");
    }
  });

  it("cannot complete a victim's lease with the token it read: the secret is only in the victim's grant", async () => {
    const submitter = await client("submitter");
    await submitter.submit([{ id: "victim-task", deadline: 1, workflowId: "v" }]);
    const victim = await client("worker");
    let lease: Awaited<ReturnType<FrontierClient["lease"]>>[number] | undefined;
    await until(async () => {
      [lease] = await victim.lease({ max: 1, leaseMs: 60_000 });
      return lease !== undefined;
    }, 10_000);
    expect(lease!.taskId).toBe("victim-task");
    const view = await submitter.getTask("victim-task", { workflowId: "v" });
    expect(view?.token).toBe(lease!.token); // the fencing token is readable; it authorizes nothing
    expect(JSON.stringify(view)).not.toContain(lease!.secret!);
    const attacker = await client("worker");
    const forged = { taskId: "victim-task", workflowId: "v", token: view!.token!, secret: "A".repeat(22) };
    await expect(attacker.complete(forged)).rejects.toMatchObject({ code: "STALE_LEASE" });
    await expect(attacker.fail(forged, { retryable: false })).rejects.toMatchObject({ code: "STALE_LEASE" });
    // And straight at the shard, asking for more leases on the way: nothing granted.
    const nc = await plain({ role: "worker" });
    const owner = `shard-${slotOf("v") % 2}`; // `start` gives shard i the slots n with n mod N == i
    const settled = await send(nc, s.shard(owner, "settle"), {
      op: "settle",
      completes: [forged],
      lease: { owner: "attacker", max: 10, leaseMs: 60_000, requestId: "grab" },
    });
    expect(settled.reply).toMatchObject({
      ok: true,
      results: [{ error: { code: "STALE_LEASE" } }],
      leases: [],
    });
    // Nor can it hand the victim's lease back (to lease the task itself), through a coordinator
    // or at the shard (a worker may send release there, with the lease's secret).
    await expect(attacker.release(forged)).rejects.toMatchObject({ code: "STALE_LEASE" });
    const released = await send(nc, s.shard(owner, "release"), { op: "release", ...forged });
    expect(released.reply).toMatchObject({ ok: false, error: { code: "STALE_LEASE" } });
    expect(await submitter.getTask("victim-task", { workflowId: "v" })).toMatchObject({
      state: "LEASED",
      token: lease!.token,
    });
    // The victim's own complete is not a duplicate: nobody completed it before.
    expect(await victim.complete(lease!)).toEqual({ duplicate: false });
  });

  it("cannot write or delete the slot bucket", async () => {
    const nc = await plain({ role: "worker" });
    for (const subject of [
      `$KV.${s.slotBucket}.slot.7`,
      `$JS.API.STREAM.DELETE.KV_${s.slotBucket}`,
      `$JS.API.STREAM.PURGE.KV_${s.slotBucket}`,
      `$JS.API.STREAM.UPDATE.KV_${s.slotBucket}`,
    ]) {
      await expect(
        nc.request(subject, new TextEncoder().encode("shard-9"), { timeout: 2_000 }),
      ).rejects.toThrow(/permissions violation/i);
    }
  });

  it("cannot announce a frontier, join the coordinators' queue group, or read other inboxes", async () => {
    const nc = await plain({ role: "worker" });
    const coordinator = await plain({ role: "coordinator" });
    const heard: unknown[] = [];
    const listening = coordinator.subscribe(s.frontier, {
      callback: (_e, m) => {
        heard.push(m.data);
      },
    });
    await coordinator.flush();
    nc.publish(s.frontier, new TextEncoder().encode("fake announcement"));
    await nc.flush().catch(() => undefined);
    expect(await subscriptionRefused(nc, s.coordAll, COORDINATOR_QUEUE)).toBe(true);
    expect(await subscriptionRefused(nc, "_INBOX.>")).toBe(true);
    expect(await subscriptionRefused(nc, `_INBOX.${CLUSTER}.>`)).toBe(true);
    expect(await subscriptionRefused(nc, `_INBOX.${CLUSTER}.coordinator.>`)).toBe(true);
    expect(await subscriptionRefused(nc, s.all)).toBe(true);
    expect(heard.filter((d) => new TextDecoder().decode(d as Uint8Array) === "fake announcement")).toEqual(
      [],
    );
    listening.unsubscribe();
  });
});

describe("a submitter's credentials in an attacker's hands", () => {
  it("cannot lease, cancel or touch a shard", async () => {
    const submitter = await client("submitter");
    for (const call of [
      () => submitter.lease({ max: 1 }),
      () => submitter.cancel("second", { workflowId: "w" }),
      () => submitter.updateDeadline("second", 5, { workflowId: "w" }),
      () => submitter.moveSlot(0, "shard-1"),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    }
    const nc = await plain({ role: "submitter" });
    const outcome = await send(nc, s.shard("shard-0", "lease"), {
      op: "lease",
      owner: "x",
      max: 1,
      leaseMs: 1_000,
      waitMs: 0,
      requestId: "r",
    });
    expect(refusedByNats(outcome)).toBe(true);
  });

  it("may submit straight at a shard, which checks the batch as a coordinator's: its own slots only", async () => {
    const nc = await plain({ role: "submitter" });
    const on = (shard: number) => {
      for (let i = 0; ; i++) if (slotOf(`direct-${i}`) % 2 === shard) return `direct-${i}`;
    };
    const submit = (id: string, key: string): Request => ({
      op: "submit",
      idempotencyKey: key,
      tasks: [{ id, deadline: 1 }],
    });
    expect(await send(nc, s.shard("shard-0", "submit"), submit(on(0), "direct-0"))).toMatchObject({
      reply: { ok: true, accepted: 1 },
    });
    const elsewhere = await send(nc, s.shard("shard-0", "submit"), submit(on(1), "direct-1"));
    expect(elsewhere.reply?.ok === false && elsewhere.reply.error.code).toBe("SLOT_NOT_OWNED");
    // The SDK does it by itself once it has read the slot table, which a submitter may read.
    const submitter = await client("submitter");
    for (let i = 0; i < 20; i++) await submitter.submit([{ id: `sdk-direct-${i}`, deadline: 1 }]);
    expect((await submitter.getTask("sdk-direct-19"))?.state).toBe("RUNNABLE");
  });

  it("moves a slot only for an admin; only a shard may hand a shard tasks, not even a coordinator", async () => {
    const coordinator = await plain({ role: "coordinator" });
    const planted = await send(coordinator, s.shard("shard-0", "adopt"), {
      op: "adopt",
      moveId: "planted",
      slot: 1,
      source: "shard-1",
      part: 0,
      parts: 1,
      tasks: [],
      entries: [],
      leases: [],
    });
    expect(refusedByNats(planted)).toBe(true);
    const admin = await client("admin");
    // frontier start spreads slots n mod 2: slot 0 is shard-0's, and moves to shard-1.
    const moved = await admin.moveSlot(0, "shard-1");
    expect(moved.tasks).toBeGreaterThanOrEqual(0);
    // A second ask of the same move finds it done.
    expect((await admin.moveSlot(0, "shard-1")).tasks).toBe(0);
  });
});
