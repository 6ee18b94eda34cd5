/**
 * Slot moves between live shards (docs/cluster.md, "Slot movement"), both
 * ends: the source drives a move, the target adopts it.
 *
 * A move of slot s from this shard (A) to B under move id m, each step
 * durable before the next, each idempotent:
 *
 *   FENCING   s refused for new submits and prepares (SLOT_MOVING), while
 *             prepared parts and commits touching s end (commit, abort or
 *             expiry: a committed part must land before the move)
 *   EXPORTED  Shard.beginMove: s's tasks, entries and lease proofs out of
 *             the engine into an outbox row, one commit, with the claims of
 *             the ids homed in s (rows, and the claims of tasks staying
 *             here), and rows left here for leaving tasks whose ids stay
 *             homed here. From here requests about s's tasks, and claims
 *             homed in s, are answered SLOT_MOVING.
 *   ADOPTED   every `adopt` part acknowledged by B; B committed the whole
 *             export with `adopted(m)` in one commit
 *   SWITCHED  slot.<s> updated from A to B, revision-checked
 *   ENDED     Shard.endMove: the outbox row deleted
 *
 * A restarted source finds the outbox rows (Shard.outgoingMoves) and drives
 * each from EXPORTED on again: B answers an adopt of a move it has
 * `adopted: true`, and a slot naming B already is a done switch. A move B
 * refuses (a task id it holds already) is undone at A (Shard.abortMove)
 * — only on B's explicit refusal, never on silence: B may have adopted it.
 *
 * A move id names one move for good. ENDED is remembered at A in the
 * commit that deletes the outbox row (Shard.endedMove), and a resend of the
 * move is answered done from it, even after the slot came back to A: were it
 * exported again under the id, B would answer `adopted` for the export it
 * adopted before and the new one's tasks would be on neither shard. B, too,
 * tells exports apart (each part carries its export's `exportedAt`) and
 * refuses another export under an id it adopted, so A undoes it. And A
 * takes no move of the slot back (SLOT_MOVING, retried) until its own move
 * of it ended: a driver resumed after a crash between SWITCHED and ENDED
 * must never find the bucket naming A again and switch it a second time.
 *
 * The target keeps the parts of a move in memory until it has all of them,
 * then adopts them in one commit (a restart loses the parts, and the source
 * sends them again). Adopted slots are served once the bucket names this
 * shard (SlotGuard.arrive).
 */
import { FrontierError, InvalidArgumentError, type TaskRecord } from "@frontier/core";
import {
  type AdoptRequest,
  encodedByteLength,
  homeSlotOf,
  type IdClaim,
  MAX_MOVE_PART_TASKS,
  MOVE_PART_BYTES,
  type MovedEntry,
  ProtocolError,
  slotOf,
  slotOfTask,
  unwrapReply,
  WireErrorCode,
} from "@frontier/protocol";
import { claimRow, type IdempotencyEntry, type Shard, type SlotExport } from "@frontier/shard";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { requestPeer } from "./peer-request.js";
import type { SlotGuard } from "./slot-guard.js";
import type { SlotOwnership } from "./slot-ownership.js";
import { messageOf } from "./util.js";

/** What the mover needs of its shard actor. */
export interface SlotMoverContext {
  readonly shardId: string;
  readonly cluster: string;
  readonly shard: Shard;
  readonly guard: SlotGuard;
  readonly ownership: SlotOwnership;
  readonly nc: NatsConnection;
  readonly log: Logger;
  /** The secret of this shard's lease of `taskId` under `token` (an adopted one's proof, if adopted). */
  readonly secretOf: (taskId: string, token: number) => string;
  /** Whether a prepared part or a commit in progress has a task in `slot`. */
  readonly busy: (slot: number) => boolean;
  /** Whether a prepared part here reserves task id `id` (an adopted task must not collide with it). */
  readonly reserved: (id: string) => boolean;
  /** Whether shard `shardId` announced lately (a target must be alive before a slot is fenced for it). */
  readonly heardFrom: (shardId: string) => boolean;
  /** Tells the announcer the frontier changed (tasks left or arrived). */
  readonly changed: () => void;
  /** Stops retries when the actor closes. */
  readonly signal: AbortSignal;
  /** Timeout of one adopt request, ms. */
  readonly requestTimeoutMs: number;
}

/** How long a target keeps the parts of a move that stopped arriving, ms. */
const STAGED_TTL_MS = 5 * 60_000;
/** Backoff between tries of a step that failed transiently, ms. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** How often a fencing move looks at the prepared parts of its slot, ms. */
const FENCE_POLL_MS = 20;

interface Staged {
  readonly parts: (AdoptRequest | undefined)[];
  received: number;
  touchedAt: number;
  /** The export the parts are of (AdoptRequest.exportedAt). */
  readonly exportedAt: number | undefined;
}

export class SlotMover {
  /** Slot → move id, for every outbox row, and for a move fencing its slot before its export commits. */
  private readonly movingSlots = new Map<number, string>();
  /** Moves being driven here, by move id. */
  private readonly running = new Map<string, Promise<number>>();
  /** Parts of moves arriving, by move id. */
  private readonly staged = new Map<string, Staged>();
  /** Adopts being committed, by move id: a repeated last part waits for the first. */
  private readonly adopting = new Map<string, Promise<void>>();
  /** Slots whose move away ended in this process → their new shard (requests routed by a stale table). */
  private readonly moved = new Map<number, string>();

  constructor(private readonly ctx: SlotMoverContext) {
    for (const row of ctx.shard.outgoingMoves()) this.movingSlots.set(row.slot, row.moveId);
  }

  /** The slots leaving (outbox rows), for the guard at start. */
  leavingSlots(): number[] {
    return [...this.movingSlots.keys()];
  }

  /** The shard `slot` moved to, when its move away from here ended in this process. */
  movedTo(slot: number): string | undefined {
    return this.moved.get(slot);
  }

  /** Whether `slot` is moving away: its submits, prepares and tasks are answered SLOT_MOVING. */
  isMoving(slot: number): boolean {
    return this.movingSlots.has(slot);
  }

  /** SLOT_MOVING for `slot`, naming the move. */
  movingError(slot: number, what: string): ProtocolError {
    const moveId = this.movingSlots.get(slot);
    return new ProtocolError(
      WireErrorCode.SLOT_MOVING,
      `${what}: slot ${slot} is moving from shard ${this.ctx.shardId}` +
        `${moveId === undefined ? "" : ` (move ${JSON.stringify(moveId)})`}; retry`,
      { retryable: true },
    );
  }

  /** Drives every move left in the outbox by a previous process to its end, in the background. */
  resume(): void {
    for (const row of this.ctx.shard.outgoingMoves()) {
      this.ctx.guard.leave(row.slot);
      void this.track(row.moveId, () => this.drive(row)).catch(() => {});
    }
  }

  /**
   * Moves `slot` to `target` under `moveId` (see the module comment);
   * resolves with the tasks moved once the move has ended. A resend joins
   * a move in progress, or finds it done (0 tasks).
   */
  move(slot: number, target: string, moveId: string): Promise<number> {
    const running = this.running.get(moveId);
    if (running) return running;
    const { shardId, shard, ownership } = this.ctx;
    const row = shard.outgoingMoves().find((r) => r.moveId === moveId);
    if (row) return this.track(moveId, () => this.drive(row));
    const ended = shard.endedMove(moveId);
    if (ended !== undefined) {
      // A resend of a move that ended: done, whoever holds the slot now. The id is spent.
      if (ended.slot === slot && ended.target === target) return Promise.resolve(0);
      return Promise.reject(
        new InvalidArgumentError(
          `move ${JSON.stringify(moveId)} moved slot ${ended.slot} to shard ${ended.target} already; ` +
            "a new move needs a new move id",
        ),
      );
    }
    if (target === shardId)
      return Promise.reject(
        new InvalidArgumentError(`slot ${slot} cannot move to the shard it is on (${target})`),
      );
    if (this.isMoving(slot)) return Promise.reject(this.movingError(slot, `move ${JSON.stringify(moveId)}`));
    if (!this.ctx.guard.serves(slot)) {
      // Done before (a resend after the move ended), or not ours to move.
      if (ownership.map.ownerOf(slot) === target) return Promise.resolve(0);
      const owner = ownership.map.ownerOf(slot);
      return Promise.reject(
        new ProtocolError(
          WireErrorCode.SLOT_NOT_OWNED,
          `shard ${shardId} does not own slot ${slot}${owner === undefined ? "" : ` (shard ${owner} does)`}; refresh routing and retry`,
        ),
      );
    }
    if (!this.ctx.heardFrom(target))
      return Promise.reject(
        new ProtocolError(
          WireErrorCode.SHARD_UNAVAILABLE,
          `shard ${target} has not announced lately: slot ${slot} is not moved to a shard that may be down`,
          { retryable: true },
        ),
      );
    return this.track(moveId, () => this.start(slot, target, moveId));
  }

  // ------------------------------------------------------------------ source

  private track(moveId: string, run: () => Promise<number>): Promise<number> {
    const existing = this.running.get(moveId);
    if (existing) return existing;
    const p = run().finally(() => this.running.delete(moveId));
    this.running.set(moveId, p);
    return p;
  }

  private async start(slot: number, target: string, moveId: string): Promise<number> {
    const { shard, log, shardId } = this.ctx;
    this.movingSlots.set(slot, moveId);
    let row: SlotExport;
    try {
      // Prepared parts of the slot end first (committed, aborted or expired): a committed part
      // must land here before the tasks leave. New ones are refused (isMoving) meanwhile.
      while (this.ctx.busy(slot)) {
        if (this.ctx.signal.aborted) throw new Error("the shard is closing");
        await sleep(FENCE_POLL_MS);
      }
      row = await shard.beginMove({
        moveId,
        slot,
        source: shardId,
        target,
        select: slotSelector(slot),
        proofOf: this.ctx.secretOf,
        // The guard still serves `slot` here; the Shard tells it apart. A slot leaving already
        // (exported) is not kept: its claims went with it.
        homes: { homeOf: homeSlotOf, keeps: (home) => this.ctx.guard.serves(home) },
      });
    } catch (error) {
      this.movingSlots.delete(slot);
      throw error;
    }
    this.ctx.guard.leave(slot);
    this.ctx.changed();
    log.info({ slot, target, moveId, tasks: row.tasks.length }, "moving a slot: its tasks are fenced");
    return this.drive(row);
  }

  /** From EXPORTED to ENDED (or undone on the target's refusal). Retries transient failures until closed. */
  private async drive(row: SlotExport): Promise<number> {
    const { log, shard, ownership, guard, shardId } = this.ctx;
    const { slot, target, moveId } = row;
    this.movingSlots.set(slot, moveId);
    const refused = await this.retrying("adopt", () => this.sendParts(row));
    if (refused !== undefined) {
      log.error({ slot, target, moveId, err: refused }, "the target refused the slot: the move is undone");
      await this.retrying("undo", () => shard.abortMove(moveId));
      this.movingSlots.delete(slot);
      guard.keep(slot);
      this.ctx.changed();
      throw new InvalidArgumentError(
        `slot ${slot} was not moved: shard ${target} refused it (${refused}); it stays on ${shardId}`,
      );
    }
    await this.retrying("switch", () => ownership.transfer(slot, shardId, target));
    await this.retrying("end", () => shard.endMove(moveId));
    this.movingSlots.delete(slot);
    this.moved.set(slot, target);
    guard.left(slot);
    log.info({ slot, target, moveId, tasks: row.tasks.length }, "moved a slot");
    return row.tasks.length;
  }

  /**
   * Sends every part; resolves undefined once the target adopted the move,
   * or with its reason when it refused the move for good (nothing adopted).
   */
  private async sendParts(row: SlotExport): Promise<string | undefined> {
    const parts = splitExport(row);
    for (const part of parts) {
      const answer = await untilAborted(
        requestPeer(this.ctx, row.target, part, this.ctx.requestTimeoutMs),
        this.ctx.signal,
      );
      let reply: ReturnType<typeof unwrapReply<"adopt">>;
      try {
        reply = unwrapReply(answer);
      } catch (error) {
        // Only the target's refusal of the tasks (an id it holds) undoes the move: it answers a
        // move it adopted before as adopted, whatever the part, so it adopted nothing. Anything
        // else is tried again (an older peer, a bug: the outbox keeps the tasks meanwhile).
        if (error instanceof FrontierError && error.code === WireErrorCode.INVALID_ARGUMENT)
          return messageOf(error);
        throw error;
      }
      if (reply.adopted) return undefined;
    }
    // Every part sent, and the last one did not complete the move: the target lost some (a
    // restart); send them all again.
    throw new Error(`shard ${row.target} did not adopt move ${row.moveId} after its last part`);
  }

  /** Runs `step` until it resolves, backing off after each failure; rejects only when the actor closes. */
  private async retrying<T>(step: string, run: () => Promise<T>): Promise<T> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        return await run();
      } catch (error) {
        if (this.ctx.signal.aborted) throw error;
        this.ctx.log.warn({ step, err: messageOf(error) }, "a slot move step failed; trying again");
        await sleep(delay);
        delay = Math.min(RETRY_MAX_MS, delay * 2);
      }
    }
  }

  // ------------------------------------------------------------------ target

  /**
   * One part of a move arriving. Answers `adopted` once every part is in
   * and the whole move is committed (or was before); false while parts are
   * missing. A move refused (a task id held here) throws, adopting nothing.
   */
  async adopt(part: AdoptRequest): Promise<{ adopted: boolean }> {
    const { shard, guard } = this.ctx;
    const adopted = shard.adoptedMove(part.moveId);
    if (adopted !== undefined) {
      if (
        adopted.slot !== part.slot ||
        adopted.source !== part.source ||
        (adopted.exportedAt !== undefined &&
          part.exportedAt !== undefined &&
          adopted.exportedAt !== part.exportedAt)
      )
        // Another export under an id adopted before (another slot, another source, or the same
        // source's export made again): adopting nothing of it, refused, so the source undoes it
        // (its tasks would otherwise be on neither shard).
        throw new InvalidArgumentError(
          `move ${JSON.stringify(part.moveId)} was adopted here before, of slot ${adopted.slot} from shard ` +
            `${adopted.source}; a new move needs a new move id`,
        );
      guard.arrive(part.slot);
      return { adopted: true };
    }
    // A slot whose move away from here has not ended is not taken back yet: that move's driver,
    // resumed after a crash, could still find the bucket naming this shard once the slot is back
    // and switch it to its old target, which holds none of its tasks now. Retried by the source
    // until the move here ends (a move from here is never waiting on a move to here).
    if (this.isMoving(part.slot))
      throw this.movingError(part.slot, `adopt of move ${JSON.stringify(part.moveId)}`);
    const inProgress = this.adopting.get(part.moveId);
    if (inProgress) {
      await inProgress;
      return { adopted: true };
    }
    const now = Date.now();
    for (const [moveId, s] of this.staged) if (now - s.touchedAt > STAGED_TTL_MS) this.staged.delete(moveId);
    let staged = this.staged.get(part.moveId);
    if (
      staged === undefined ||
      staged.parts.length !== part.parts ||
      // Parts of another export under the same id are never mixed with these.
      staged.exportedAt !== part.exportedAt
    ) {
      staged = {
        parts: new Array<AdoptRequest | undefined>(part.parts).fill(undefined),
        received: 0,
        touchedAt: now,
        exportedAt: part.exportedAt,
      };
      this.staged.set(part.moveId, staged);
    }
    staged.touchedAt = now;
    if (staged.parts[part.part] === undefined) staged.received++;
    staged.parts[part.part] = part;
    if (staged.received < part.parts) return { adopted: false };
    this.staged.delete(part.moveId);
    const parts = staged.parts as AdoptRequest[];
    const row: SlotExport = {
      moveId: part.moveId,
      slot: part.slot,
      source: part.source,
      target: this.ctx.shardId,
      // The export's time on the source's clock: the adopt shifts the moved times by this shard's
      // clock minus it (Shard.adopt), so a moved lease ends no earlier than it would have at the
      // source, whatever the two clocks' offset. (An older source does not say: read as now.)
      createdAt: part.exportedAt ?? now,
      tasks: parts.flatMap((p) => p.tasks),
      idempotency: parts.flatMap((p) => p.entries.map((e) => [e.key, entryOf(e)] as const)),
      leases: parts.flatMap((p) => p.leases),
      claims: parts.flatMap((p) => (p.claims ?? []).map(claimRow)),
    };
    for (const { spec } of row.tasks) {
      // A prepared part's commit must fit: an id it reserved is taken, as a held one is (refused, undone).
      if (this.ctx.reserved(spec.id))
        throw new InvalidArgumentError(
          `task ${JSON.stringify(spec.id)} is reserved here by a submit being committed`,
        );
      if (slotOfTask({ id: spec.id, workflowId: spec.workflowId, large: spec.large }) !== row.slot)
        throw new InvalidArgumentError(
          `task ${JSON.stringify(spec.id)} of move ${row.moveId} is not in slot ${row.slot}`,
        );
    }
    const adopting = shard.adopt(row, part.exportedAt).then(() => {
      this.moved.delete(row.slot);
      guard.arrive(row.slot);
      this.ctx.changed();
      this.ctx.log.info(
        { slot: row.slot, source: row.source, moveId: row.moveId, tasks: row.tasks.length },
        "adopted a slot's tasks",
      );
    });
    this.adopting.set(row.moveId, adopting);
    try {
      await adopting;
      return { adopted: true };
    } finally {
      this.adopting.delete(row.moveId);
    }
  }
}

/** A slot export as `adopt` parts of about MOVE_PART_BYTES each (at least one part). */
export function splitExport(row: SlotExport): AdoptRequest[] {
  const parts: AdoptRequest[] = [];
  // Numbered in order; `parts` is filled in once all are known.
  const push = (
    tasks: readonly TaskRecord[],
    entries: readonly MovedEntry[],
    leases: AdoptRequest["leases"],
    claims: readonly IdClaim[] = [],
  ): void => {
    const { moveId, slot, source } = row;
    parts.push({
      op: "adopt",
      moveId,
      slot,
      source,
      part: parts.length,
      parts: 0,
      tasks,
      entries,
      leases,
      ...(claims.length === 0 ? {} : { claims }),
      exportedAt: row.createdAt,
    });
  };
  let tasks: TaskRecord[] = [];
  let bytes = 0;
  const flush = () => {
    push(tasks, [], []);
    tasks = [];
    bytes = 0;
  };
  for (const task of row.tasks) {
    const size = encodedByteLength(task);
    if (tasks.length > 0 && (bytes + size > MOVE_PART_BYTES || tasks.length >= MAX_MOVE_PART_TASKS)) flush();
    tasks.push(task);
    bytes += size;
  }
  // Entries and lease proofs ride in parts of their own after the tasks (small, and bounded by count).
  const entries: MovedEntry[] = row.idempotency.map(([key, e]) => ({ key, ...e }));
  const rest: { entries: MovedEntry[]; leases: AdoptRequest["leases"][number][] }[] = [];
  let current = { entries: [] as MovedEntry[], leases: [] as AdoptRequest["leases"][number][] };
  let restBytes = 0;
  const next = () => {
    rest.push(current);
    current = { entries: [], leases: [] };
    restBytes = 0;
  };
  for (const e of entries) {
    const size = encodedByteLength(e);
    if (
      current.entries.length > 0 &&
      (restBytes + size > MOVE_PART_BYTES || current.entries.length >= MAX_MOVE_PART_TASKS)
    )
      next();
    current.entries.push(e);
    restBytes += size;
  }
  for (const l of row.leases) {
    if (current.leases.length >= MAX_MOVE_PART_TASKS) next();
    current.leases.push(l);
  }
  if (tasks.length > 0 || (rest.length === 0 && current.entries.length === 0 && current.leases.length === 0))
    flush();
  if (current.entries.length > 0 || current.leases.length > 0) next();
  for (const r of rest) push([], r.entries, r.leases);
  // The claims homed in the slot ride in parts of their own, last, bounded by bytes and count.
  let claims: IdClaim[] = [];
  let claimBytes = 0;
  for (const c of row.claims ?? []) {
    const size = encodedByteLength(c);
    if (claims.length > 0 && (claimBytes + size > MOVE_PART_BYTES || claims.length >= MAX_MOVE_PART_TASKS)) {
      push([], [], [], claims);
      claims = [];
      claimBytes = 0;
    }
    claims.push(c);
    claimBytes += size;
  }
  if (claims.length > 0) push([], [], [], claims);
  return parts.map((p) => ({ ...p, parts: parts.length }));
}

/**
 * Picks the tasks of `slot` (Shard.beginMove's select), hashing each
 * workflow id once; a large workflow's task is placed by its own pair.
 */
function slotSelector(slot: number): (workflowId: string | undefined, id: string, large: boolean) => boolean {
  const slots = new Map<string, number>();
  return (workflowId, id, large) => {
    if (workflowId === undefined) return slotOf(id) === slot;
    if (large) return slotOfTask({ id, workflowId, large }) === slot;
    let s = slots.get(workflowId);
    if (s === undefined) slots.set(workflowId, (s = slotOf(workflowId)));
    return s === slot;
  };
}

function entryOf(e: MovedEntry): IdempotencyEntry {
  return {
    taskIds: e.taskIds,
    createdAt: e.createdAt,
    ...(e.tokens === undefined ? {} : { tokens: e.tokens }),
    ...(e.fence === undefined ? {} : { fence: e.fence }),
  };
}

/** `promise`, or a rejection as soon as `signal` aborts (the actor closing does not wait for a reply). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("the shard is closing"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("the shard is closing"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
