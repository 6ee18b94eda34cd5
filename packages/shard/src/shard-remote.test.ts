/**
 * A large workflow's completion events across a killed shard process: the
 * sender's outbox (an ended prerequisite owing its outcome) and the
 * receiver's dedupe (the prerequisites a dependent applied) are both in the
 * task records the commit journals, so a SIGKILL loses neither.
 */

import type { RemoteEvent, RemoteLink, TaskInput } from "@frontier/core";
import { describe, expect, it } from "vitest";
import type { ShardOptions } from "./shard.js";
import { ShardProcess } from "./shard-process.fixture.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard, closeShard } = useShards("shard-remote");

const WF = "big";
/** p in partition 0; d and e in partition 1 (the fixture's partitionOf reads this table). */
const partitions = { p: 0, d: 1, e: 1 };
const partitionOf = (t: { id: string }) => partitions[t.id as keyof typeof partitions] ?? 0;

const task = (id: string, prerequisites: string[] = []): TaskInput => ({
  id,
  deadline: 10,
  workflowId: WF,
  large: true,
  prerequisites,
});
const links: RemoteLink[] = [
  { prerequisite: "p", dependent: "d", workflowId: WF },
  { prerequisite: "p", dependent: "e", workflowId: WF },
];

async function killed(child: ShardProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.exited;
}

const open = (dataDir: string, more: Partial<ShardOptions> = {}) =>
  openShard({ dataDir, partitionOf, sameWorkflowPrerequisites: true, ...more });

describe("a large workflow's completion events on a killed shard", () => {
  it("keeps an ended prerequisite's outbox: sent after the restart, until acknowledged", async () => {
    const senderDir = freshDir();
    const sender = ShardProcess.start();
    await sender.ok("open", { dataDir: senderDir, sameWorkflowPrerequisites: true }, { partitions });
    await sender.ok("submit", [task("p")], { links });
    const [lease] = (await sender.ok("lease", "w")) as { taskId: string; token: number }[];
    await sender.ok("complete", lease!.taskId, lease!.token);
    await killed(sender);

    const receiver = await open(freshDir());
    await receiver.submit([task("d", ["p"]), task("e", ["p"])]);
    const restarted = await open(senderDir);
    const events = await restarted.remoteOutbox(10);
    expect(events).toEqual([
      { prerequisite: "p", dependent: "d", workflowId: WF, outcome: "COMPLETED" },
      { prerequisite: "p", dependent: "e", workflowId: WF, outcome: "COMPLETED" },
    ]);
    expect(await receiver.applyRemote(events)).toEqual(["applied", "applied"]);
    // Only d's acknowledgement gets back before the sender stops. Acknowledgements are kept in
    // memory until the last one (which journals remoteDelivered): after a restart every event
    // of the prerequisite is owed again, and the receiver answers them as duplicates.
    await restarted.acknowledgeRemote([events[0]!]);
    expect(await restarted.remoteOutbox(10)).toEqual([events[1]]);
    await closeShard(restarted);
    const again = await open(senderDir);
    expect(await again.remoteOutbox(10)).toEqual(events);
    expect(await receiver.applyRemote(events)).toEqual(["duplicate", "duplicate"]);
    await again.acknowledgeRemote(events);
    await closeShard(again);
    const last = await open(senderDir);
    expect(last.getTask("p")).toMatchObject({ state: "COMPLETED", remoteDelivered: true });
    expect(await last.remoteOutbox(10)).toEqual([]);
    expect((await receiver.lease("w", { max: 10 })).map((l) => l.taskId)).toEqual(["d", "e"]);
  });

  it("keeps a dependent's dedupe: an event redelivered after the restart is a duplicate", async () => {
    const receiverDir = freshDir();
    const receiver = ShardProcess.start();
    await receiver.ok("open", { dataDir: receiverDir, sameWorkflowPrerequisites: true }, { partitions });
    await receiver.ok("submit", [task("d", ["p"])]);
    const event: RemoteEvent = { prerequisite: "p", dependent: "d", workflowId: WF, outcome: "COMPLETED" };
    // Applied and answered; the sender never heard it (killed with the receiver, say), so it sends again.
    expect(await receiver.ok("applyRemote", [event])).toEqual(["applied"]);
    await killed(receiver);

    const restarted = await open(receiverDir);
    expect(restarted.getTask("d")).toMatchObject({ state: "RUNNABLE", remoteMet: ["p"] });
    expect(await restarted.applyRemote([event])).toEqual(["duplicate"]);
    const leases = await restarted.lease("w", { max: 10 });
    expect(leases.map((l) => l.taskId)).toEqual(["d"]);
    await restarted.complete("d", leases[0]!.token);
    expect(await restarted.applyRemote([event])).toEqual(["duplicate"]);
    expect(restarted.getTask("d")!.state).toBe("COMPLETED");
  });

  it("refuses a link to a prerequisite it does not hold, storing nothing", async () => {
    const shard = await open(freshDir());
    await expect(shard.submit([task("q")], { links, idempotencyKey: "k" })).rejects.toThrow(
      /UNKNOWN_PREREQUISITE|not a known task/,
    );
    expect(shard.getTask("q")).toBeUndefined();
    expect(shard.submitted("k")).toBeUndefined();
  });
});
