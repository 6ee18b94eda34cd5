/**
 * The roles as a real nats-server enforces them: a server started with the
 * auth.conf of a credentials directory, and each principal connected with
 * its own seed and inbox prefix, trying what its role may and may not do.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { COORDINATOR_QUEUE, OPS, subjectsFor } from "@frontier/protocol";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessOf, clusterPrincipals, ensureCredentials } from "./credentials.js";
import { natsConnectionOptions } from "./nats-access.js";
import { HOLDER_SHARD_OPS, type Principal, SHARD_TO_SHARD_OPS } from "./roles.js";

const CLUSTER = "perm";
const s = subjectsFor(CLUSTER);
const dir = mkdtempSync(join(tmpdir(), "frontier-perm-"));
let server: NatsServer;
const open: NatsConnection[] = [];

async function as(principal: Principal): Promise<NatsConnection> {
  const nc = await connect({
    ...natsConnectionOptions(server.url, accessOf(dir, CLUSTER, principal)),
    maxReconnectAttempts: 0,
  });
  open.push(nc);
  return nc;
}

type Outcome = "allowed" | "refused";

/** A request: refused when the server says the publish violates permissions; else allowed (answered or not). */
async function request(nc: NatsConnection, subject: string): Promise<Outcome> {
  try {
    await nc.request(subject, new Uint8Array(), { timeout: 300 });
    return "allowed";
  } catch (error) {
    return /permissions violation/i.test(String((error as Error).message)) ? "refused" : "allowed";
  }
}

/**
 * A subscription: refused when the server closes it for a permissions violation. The server
 * answers a SUB, refusal included, before the PONG of a PING sent after it, so once a flush
 * has come back the outcome is known: no wait for a refusal that might still come.
 */
async function subscribe(nc: NatsConnection, subject: string, queue?: string): Promise<Outcome> {
  const sub = nc.subscribe(subject, queue === undefined ? {} : { queue });
  let outcome: Outcome = "allowed";
  void sub.closed.then(() => {
    outcome = "refused";
  });
  await nc.flush();
  await nc.flush(); // the closing, a step behind the refusal, has run too
  sub.unsubscribe();
  return outcome;
}

/**
 * A plain publish: refused when a listener allowed to see the subject never gets it. The
 * server hands an allowed message to the listener while it handles the PUB, before the
 * publisher's PONG, and the listener gets it before the PONG of its own PING sent after: once
 * both flushes are back, a message that has not arrived never will.
 */
async function publish(nc: NatsConnection, subject: string, listener: NatsConnection): Promise<Outcome> {
  let outcome: Outcome = "refused";
  const sub = listener.subscribe(subject, {
    max: 1,
    callback: () => {
      outcome = "allowed";
    },
  });
  await listener.flush();
  nc.publish(subject, new Uint8Array([1]));
  await nc.flush().catch(() => undefined);
  await listener.flush();
  sub.unsubscribe();
  return outcome;
}

beforeAll(async () => {
  const credentials = ensureCredentials(dir, CLUSTER, clusterPrincipals(["s1", "s2"]));
  server = await startNatsServer({ args: ["-c", credentials.authConfigFile] });
});

afterAll(async () => {
  await Promise.all(open.map((nc) => nc.close().catch(() => undefined)));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("per-role NATS permissions", () => {
  it("refuses a client without credentials", async () => {
    await expect(connect({ servers: server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
  });

  it("a shard serves its own subjects, announces, and writes the slot bucket", async () => {
    const shard = await as({ role: "shard", shardId: "s1" });
    const coordinator = await as({ role: "coordinator" });
    expect(await subscribe(shard, s.shardAll("s1"))).toBe("allowed");
    expect(await subscribe(shard, s.shardAll("s2"))).toBe("refused");
    expect(await subscribe(shard, s.coordAll, COORDINATOR_QUEUE)).toBe("refused");
    expect(await publish(shard, s.frontier, coordinator)).toBe("allowed");
    const kv = await new Kvm(shard).create(s.slotBucket, { history: 8 });
    expect(await kv.create("slot.1", new TextEncoder().encode("s1"))).toBeGreaterThan(0);
    // A shard calls no shard or coordinator operation, but hands a moving slot's tasks to another shard.
    for (const op of OPS) {
      const expected = (SHARD_TO_SHARD_OPS as readonly string[]).includes(op) ? "allowed" : "refused";
      expect([op, await request(shard, s.shard("s2", op))]).toEqual([op, expected]);
    }
    expect(await request(shard, s.coord("submit"))).toBe("refused");
    expect(await request(shard, s.coord("moveSlot"))).toBe("refused");
  });

  it("a shard ships its journal to its own stream, reads and purges it, and touches no other's", async () => {
    const shard = await as({ role: "shard", shardId: "s1" });
    const other = await as({ role: "shard", shardId: "s2" });
    const coordinator = await as({ role: "coordinator" });
    const worker = await as({ role: "worker" });
    const stream = s.journalStream("s1");
    const api = async (nc: NatsConnection, call: string, body: unknown) =>
      JSON.parse(
        new TextDecoder().decode((await nc.request(call, JSON.stringify(body), { timeout: 2_000 })).data),
      );
    const created = await api(shard, `$JS.API.STREAM.CREATE.${stream}`, {
      name: stream,
      subjects: [s.journal("s1")],
    });
    expect(created.error).toBeUndefined();
    const ack = await api(shard, s.journal("s1"), {});
    expect(ack.seq).toBe(1);
    expect((await api(shard, `$JS.API.STREAM.MSG.GET.${stream}`, { seq: 1 })).message?.seq).toBe(1);
    expect((await api(shard, `$JS.API.STREAM.PURGE.${stream}`, {})).success).toBe(true);
    for (const nc of [other, coordinator, worker]) {
      expect(await request(nc, s.journal("s1"))).toBe("refused");
      expect(await request(nc, `$JS.API.STREAM.INFO.${stream}`)).toBe("refused");
      expect(await request(nc, `$JS.API.STREAM.PURGE.${stream}`)).toBe("refused");
      expect(await request(nc, `$JS.API.CONSUMER.CREATE.${stream}`)).toBe("refused");
    }
    // Nobody deletes or reconfigures it, its own shard neither.
    expect(await request(shard, `$JS.API.STREAM.DELETE.${stream}`)).toBe("refused");
    expect(await request(shard, `$JS.API.STREAM.UPDATE.${stream}`)).toBe("refused");
    expect(await request(shard, s.journal("s2"))).toBe("refused");
  });

  it("a coordinator serves only in the queue group, reads the bucket but cannot write it, and calls shards", async () => {
    const coordinator = await as({ role: "coordinator" });
    expect(await subscribe(coordinator, s.coordAll, COORDINATOR_QUEUE)).toBe("allowed");
    expect(await subscribe(coordinator, s.coordAll)).toBe("refused");
    expect(await subscribe(coordinator, s.coordAll, "another-group")).toBe("refused");
    expect(await subscribe(coordinator, s.frontier)).toBe("allowed");
    for (const op of OPS) {
      // Only shards hand tasks to shards: a coordinator cannot plant tasks with `adopt`, unblock a
      // large workflow's dependents with `deliverEvents`, nor ask `holds`.
      const expected = op === "adopt" || op === "deliverEvents" || op === "holds" ? "refused" : "allowed";
      expect([op, await request(coordinator, s.shard("s1", op))]).toEqual([op, expected]);
    }
    const shard = await as({ role: "shard", shardId: "s2" });
    expect(await publish(coordinator, s.frontier, shard)).toBe("refused");
    await new Kvm(shard).create(s.slotBucket, { history: 8 });
    const kv = await new Kvm(coordinator).open(s.slotBucket);
    const watcher = await kv.watch({ key: "slot.*" });
    const first = await watcher[Symbol.asyncIterator]().next();
    watcher.stop();
    expect(first.value?.key).toBe("slot.1");
    await expect(kv.put("slot.2", new TextEncoder().encode("evil"))).rejects.toThrow(
      /permissions violation/i,
    );
    await expect(kv.delete("slot.1")).rejects.toThrow(/permissions violation/i);
    await expect(new Kvm(coordinator).create("other-bucket")).rejects.toThrow(/permissions violation/i);
  });

  it("a worker leases through a coordinator and reaches a shard only for what a lease's secret authorizes", async () => {
    const worker = await as({ role: "worker" });
    const coordinator = await as({ role: "coordinator" });
    for (const op of ["lease", "heartbeat", "complete", "fail", "release", "settle"] as const) {
      expect(await request(worker, s.coord(op))).toBe("allowed");
    }
    // A worker hands a lease back (release) as it completes or fails it: at the granting shard too.
    expect(HOLDER_SHARD_OPS).toContain("release");
    expect(await request(worker, s.shard("s1", "release"))).toBe("allowed");
    for (const op of [
      "submit",
      "cancel",
      "updateDeadline",
      "getTask",
      "stats",
      "listTasks",
      "getWorkflow",
      "retry",
      "prepare",
      "check",
      "moveSlot",
      "adopt",
      "deliverEvents",
      "locate",
      "holds",
    ] as const) {
      expect(await request(worker, s.coord(op))).toBe("refused");
    }
    for (const op of OPS) {
      const expected = (HOLDER_SHARD_OPS as readonly string[]).includes(op) ? "allowed" : "refused";
      expect([op, await request(worker, s.shard("s1", op))]).toEqual([op, expected]);
    }
    expect(await publish(worker, s.frontier, coordinator)).toBe("refused");
    expect(await subscribe(worker, s.coordAll, COORDINATOR_QUEUE)).toBe("refused");
    expect(await subscribe(worker, s.frontier)).toBe("refused");
    expect(await subscribe(worker, "_INBOX.>")).toBe("refused");
    expect(await subscribe(worker, `_INBOX.${CLUSTER}.coordinator.>`)).toBe("refused");
    expect(await subscribe(worker, ">")).toBe("refused");
    await expect(new Kvm(worker).open(s.slotBucket).then((kv) => kv.status())).rejects.toThrow(
      /permissions violation/i,
    );
    await expect(
      worker.request(`$KV.${s.slotBucket}.slot.3`, new Uint8Array(), { timeout: 300 }),
    ).rejects.toThrow(/permissions violation/i);
    await expect(
      worker.request(`$JS.API.STREAM.DELETE.KV_${s.slotBucket}`, new Uint8Array(), { timeout: 300 }),
    ).rejects.toThrow(/permissions violation/i);
  });

  it("a submitter submits (at a coordinator or a shard) and reads (tasks, task lists, workflows, stats), and does nothing else", async () => {
    const submitter = await as({ role: "submitter" });
    // retry, like cancel and updateDeadline, is an admin's.
    expect(OPS).toContain("retry");
    for (const op of OPS) {
      const expected = ["submit", "getTask", "stats", "listTasks", "getWorkflow"].includes(op)
        ? "allowed"
        : "refused";
      expect([op, await request(submitter, s.coord(op))]).toEqual([op, expected]);
      // Straight at a shard: a submit only (the shard checks it as it checks a coordinator's).
      const atShard = op === "submit" ? "allowed" : "refused";
      expect([op, await request(submitter, s.shard("s1", op))]).toEqual([op, atShard]);
    }
    expect(await subscribe(submitter, `_INBOX.${CLUSTER}.worker.>`)).toBe("refused");
    // It reads the slot table (to know which shard holds a batch), and cannot write it.
    const kv = await new Kvm(submitter).open(s.slotBucket);
    expect((await kv.get("slot.1"))?.string()).toBe("s1");
    await expect(kv.put("slot.1", new TextEncoder().encode("submitter"))).rejects.toThrow(
      /permissions violation/i,
    );
  });

  it("an admin calls every coordinator operation, a worker's and a submitter's shard operations, and cannot write the bucket", async () => {
    const admin = await as({ role: "admin" });
    for (const op of OPS) {
      expect([op, await request(admin, s.coord(op))]).toEqual([op, "allowed"]);
      const expected =
        (HOLDER_SHARD_OPS as readonly string[]).includes(op) || op === "submit" ? "allowed" : "refused";
      expect([op, await request(admin, s.shard("s1", op))]).toEqual([op, expected]);
    }
    const kv = await new Kvm(admin).open(s.slotBucket);
    expect((await kv.get("slot.1"))?.string()).toBe("s1");
    await expect(kv.put("slot.1", new TextEncoder().encode("admin"))).rejects.toThrow(
      /permissions violation/i,
    );
  });

  it("a principal's replies reach only its own inbox: another role cannot listen in", async () => {
    const shard = await as({ role: "shard", shardId: "s1" });
    const sub = shard.subscribe(s.shardAll("s1"), {
      callback: (_error, msg) => {
        msg.respond(new TextEncoder().encode("secret reply"));
      },
    });
    await shard.flush();
    const worker = await as({ role: "worker" });
    const submitter = await as({ role: "submitter" });
    const eavesdropped: string[] = [];
    for (const prefix of ["_INBOX", `_INBOX.${CLUSTER}`, `_INBOX.${CLUSTER}.worker`]) {
      const outcome = await subscribe(submitter, `${prefix}.>`);
      if (outcome === "allowed") eavesdropped.push(prefix);
    }
    const reply = await worker.request(s.shard("s1", "complete"), new Uint8Array(), { timeout: 1_000 });
    expect(reply.string()).toBe("secret reply");
    expect(eavesdropped).toEqual([]);
    sub.unsubscribe();
  });
});
