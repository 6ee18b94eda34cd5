/**
 * Where a submit goes first. A batch whose tasks, and their ids' claims
 * (docs/cluster.md, "One id space per cluster": at the owner of each id's
 * home slot, `homeSlotOf`), all live on one shard goes straight to it —
 * one hop instead of two (measured at light load: p50 2.74 → 2.56 ms,
 * docs/benchmarks.md, "Direct submits") — by the cluster's slot table,
 * watched from its KV bucket once the client first submits. Everything else goes through a coordinator: a batch over several
 * shards (only a coordinator makes that atomic), a task whose id is homed
 * on another shard than its workflow (its claim is kept there: a
 * two-phase submit), a task the table has no owner for, a task without a
 * workflow that names prerequisites (the coordinator refuses it with the
 * message that says what to do), and a task of a large workflow with a
 * prerequisite in another slot (only a coordinator sends the edge's link
 * to the prerequisite's shard, which owes the dependent its completion
 * event: docs/cluster.md). In a cluster whose ids are unique per shard
 * only (`--id-space workflow`), where no claim is kept, a task homed
 * elsewhere still goes through a coordinator: the client does not read the
 * id space.
 *
 * The shard checks a direct submit as it checks a coordinator's (its slots,
 * its state, the batch itself), and the client falls back to a coordinator
 * whenever the shard is not the one to ask (docs/cluster.md, "Submit").
 */
import type { TaskInput } from "@frontier/core";
import { homeSlotOf, placementProblem, slotOfLargeTask, slotOfTask } from "@frontier/protocol";
import { SlotMap } from "@frontier/transport";
import type { NatsConnection } from "@nats-io/nats-core";

/** How long the table may take to load before the client gives up on it and keeps to coordinators, ms. */
const LOAD_TIMEOUT_MS = 10_000;

export class SubmitRoute {
  private map: SlotMap | undefined;
  private off: boolean;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    enabled: boolean,
  ) {
    this.off = !enabled;
  }

  /**
   * The shard to send `tasks` to first, or undefined for a coordinator.
   * The first call starts watching the table and answers undefined: no
   * submit waits for it.
   */
  shardFor(tasks: readonly TaskInput[]): string | undefined {
    if (this.off) return undefined;
    if (this.map === undefined) {
      this.start();
      return undefined;
    }
    if (!this.map.loaded) return undefined;
    let owner: string | undefined;
    for (const task of tasks) {
      // The coordinator refuses it with the message that says what to do.
      if (placementProblem(task) !== undefined) return undefined;
      const slot = slotOfTask(task);
      if (hasRemotePrerequisite(task, slot)) return undefined;
      const shard = this.map.ownerOf(slot);
      if (shard === undefined || (owner !== undefined && shard !== owner)) return undefined;
      // A task without a workflow lives in its id's home slot: nothing more to look up.
      if (task.workflowId !== undefined && this.map.ownerOf(homeSlotOf(task.id)) !== shard) return undefined;
      owner = shard;
    }
    return owner;
  }

  /** Coordinators only from now on: the table could not be read, or NATS refused a direct submit. */
  disable(): Promise<void> {
    this.off = true;
    const map = this.map;
    this.map = undefined;
    return map?.close() ?? Promise.resolve();
  }

  private start(): void {
    const map = SlotMap.start(this.nc, { cluster: this.cluster });
    this.map = map;
    // A table that does not load (no rights to read it, no cluster yet): stop watching it.
    void map.whenLoaded(LOAD_TIMEOUT_MS).then((loaded) => {
      if (!loaded && this.map === map) void this.disable();
    });
  }
}

/** Whether `task`, of a large workflow, has a prerequisite in another slot than its own (`slot`). */
function hasRemotePrerequisite(task: TaskInput, slot: number): boolean {
  const workflowId = task.workflowId;
  if (task.large !== true || workflowId === undefined) return false;
  for (const p of task.prerequisites ?? []) if (slotOfLargeTask(p, workflowId) !== slot) return true;
  return false;
}
