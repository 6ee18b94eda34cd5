/**
 * The completion relay alone (completion-relay.ts), over a real Shard's
 * outbox and a real nats-server: the receiving shard is a subject the test
 * holds, as the slot-move tests hold a target. It sends what the outbox owes
 * to the owner of each dependent's slot, sends again what was answered
 * `unknown` or not at all, and acknowledges only what was answered for.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RemoteApplied, RemoteEvent, TaskInput } from "@frontier/core";
import {
  type DeliverEventsRequest,
  decodeRequest,
  encodeReply,
  slotOfTask,
  subjectsFor,
} from "@frontier/protocol";
import { Shard } from "@frontier/shard";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, silent, TestEnv } from "../test/support.js";
import { CompletionRelay } from "./completion-relay.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const WF = "big";
const root = mkdtempSync(join(tmpdir(), "frontier-relay-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const large = (id: string, prerequisites: string[] = []): TaskInput => ({
  id,
  deadline: 1,
  workflowId: WF,
  large: true,
  prerequisites,
});
const slot = (id: string) => slotOfTask({ id, workflowId: WF, large: true });

/** Two dependent ids in other slots than "p" and than each other. */
function dependents(): [string, string] {
  const found: string[] = [];
  for (let i = 0; found.length < 2; i++) {
    const id = `d${i}`;
    if (slot(id) !== slot("p") && !found.some((f) => slot(f) === slot(id))) found.push(id);
  }
  return found as [string, string];
}

describe("CompletionRelay", () => {
  it("sends owed events to each slot's owner, sends again what was answered unknown or not at all, and acknowledges the rest", async () => {
    const shard = await Shard.open({
      dataDir: join(root, `s${dirs++}`),
      sameWorkflowPrerequisites: true,
      partitionOf: slotOfTask,
    });
    env.defer(() => shard.close());
    const [here, there] = dependents();
    await shard.submit([large("p")], {
      links: [
        { prerequisite: "p", dependent: here, workflowId: WF },
        { prerequisite: "p", dependent: there, workflowId: WF },
      ],
    });
    const [lease] = await shard.lease("w");
    await shard.complete(lease!.taskId, lease!.token);
    expect(shard.remoteOutboxSize).toBe(2);

    // `there` is owned by shard "b", a subject held here: it answers unknown twice, then applied.
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const received: DeliverEventsRequest[] = [];
    nc.subscribe(subjectsFor(cluster).shard("b", "deliverEvents"), {
      callback: (_err, msg) => {
        const request = decodeRequest(msg.data, "deliverEvents") as DeliverEventsRequest;
        received.push(request);
        const answer: RemoteApplied = received.length <= 2 ? "unknown" : "applied";
        msg.respond(
          encodeReply({ ok: true, op: "deliverEvents", results: request.events.map(() => answer) }),
        );
      },
    });
    await nc.flush();
    // `here` is this shard's ("a"): its handler answers at once.
    const local: RemoteEvent[] = [];
    const abort = new AbortController();
    env.defer(async () => abort.abort());
    const relay = new CompletionRelay(
      {
        shardId: "a",
        cluster,
        nc,
        log: silent,
        outbox: (limit, skip) => shard.remoteOutbox(limit, skip),
        acknowledge: (acks) => shard.acknowledgeRemote(acks),
        owing: () => shard.remoteOutboxSize,
        ownerOf: (s) => (s === slot(here) ? "a" : s === slot(there) ? "b" : undefined),
        deliverHere: async (events) => {
          local.push(...events);
          return events.map(() => "applied" as const);
        },
        signal: abort.signal,
        requestTimeoutMs: 2_000,
      },
      20,
    );
    relay.start();
    relay.kick();
    await eventually(() => shard.remoteOutboxSize === 0, 10_000, "the outbox to empty");
    expect(local).toEqual([{ prerequisite: "p", dependent: here, workflowId: WF, outcome: "COMPLETED" }]);
    expect(received.length).toBe(3);
    for (const r of received) {
      expect(r.source).toBe("a");
      expect(r.events).toEqual([
        { prerequisite: "p", dependent: there, workflowId: WF, outcome: "COMPLETED" },
      ]);
    }
    expect(shard.getTask("p")).toMatchObject({ remoteDelivered: true });
  });

  it("keeps an event owed while its slot has no owner or its owner does not answer", async () => {
    const shard = await Shard.open({
      dataDir: join(root, `s${dirs++}`),
      sameWorkflowPrerequisites: true,
      partitionOf: slotOfTask,
    });
    env.defer(() => shard.close());
    const [dependent] = dependents();
    await shard.submit([large("p")], { links: [{ prerequisite: "p", dependent, workflowId: WF }] });
    const [lease] = await shard.lease("w");
    await shard.complete(lease!.taskId, lease!.token);
    const cluster = env.freshCluster();
    const nc = await env.connect();
    let owner: string | undefined;
    const abort = new AbortController();
    env.defer(async () => abort.abort());
    const rounds: { sent: number; acknowledged: number; deferred: number }[] = [];
    const relay = new CompletionRelay(
      {
        shardId: "a",
        cluster,
        nc,
        log: silent,
        outbox: (limit, skip) => shard.remoteOutbox(limit, skip),
        acknowledge: (acks) => shard.acknowledgeRemote(acks),
        owing: () => shard.remoteOutboxSize,
        ownerOf: () => owner,
        deliverHere: async (events) => events.map(() => "applied" as const),
        signal: abort.signal,
        requestTimeoutMs: 500,
        onRound: (round) => rounds.push(round),
      },
      20,
    );
    relay.start();
    relay.kick();
    // No owner: deferred. Then an owner nobody answers for ("gone"): deferred again.
    await eventually(() => rounds.length >= 1, 5_000, "a round");
    owner = "gone";
    await eventually(() => rounds.length >= 3, 10_000, "more rounds");
    expect(rounds.every((r) => r.acknowledged === 0 && r.deferred === 1)).toBe(true);
    expect(shard.remoteOutboxSize).toBe(1);
    // The owner is this shard now: delivered.
    owner = "a";
    await eventually(() => shard.remoteOutboxSize === 0, 10_000, "the outbox to empty");
  });
});
