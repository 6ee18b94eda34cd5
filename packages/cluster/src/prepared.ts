/**
 * Prepared parts of submits that span several shards (phase one of the
 * two-phase submit, see docs/cluster.md), waiting for their commit.
 *
 * A part is held in memory only: it reserves its task ids so that no other
 * submit or prepare takes them before the commit, for `ttlMs`. A shard that
 * restarts forgets its prepared parts; their commit then fails (retryable)
 * and the coordinator's retry of the whole submit prepares them again.
 *
 * Invariants:
 *  - `reserved` holds exactly the ids of the parts in `parts` (counted: an
 *    id stays reserved while any part holds it).
 *  - Every part lives `ttlMs` from its last prepare, and a refresh moves it
 *    to the end, so `parts` is in expiry order: `sweep` pops expired parts
 *    from the front, O(expired parts + their ids), never looking at the rest.
 *  - `heldTasks` and `heldPayloadBytes` are the sums over `parts`: what the
 *    parts will add to the shard when committed, set aside against the
 *    shard's limits (one idempotency key per part).
 *  - `reservedClaims` holds exactly the claimed ids of the parts (counted),
 *    the ids homed here that the parts' batches take (docs/cluster.md, "One
 *    id space per cluster"); `claimsKept` the keys of parts whose claims
 *    are durable already (a `claimsOnly` commit), a subset of `parts`' keys.
 */
import type { RemoteLink, TaskInput } from "@frontier/core";
import type { IdClaim } from "@frontier/protocol";
import type { ShardHoldings } from "@frontier/shard";

export interface PreparedPart {
  readonly key: string;
  readonly tasks: readonly TaskInput[];
  /** Its remote links (large workflows): registered on this shard's tasks at the commit. */
  readonly links: readonly RemoteLink[];
  readonly ids: readonly string[];
  readonly expiresAt: number;
  /** Size of its prepare request on the wire, counted against the byte limit. */
  readonly bytes: number;
  /** Its payloads' bytes as the shard counts them (Shard.admit), set aside against maxStoredBytes. */
  readonly payloadBytes: number;
  /** The claims of ids homed here that its batch takes (tasks of this part or of other shards). */
  readonly claims: readonly IdClaim[];
}

/** How much the parts may hold at once. */
export interface PreparedLimits {
  readonly maxParts: number;
  readonly maxBytes: number;
}

/** Ids held by prepared parts, counted (the shard never lets two parts share one, but this must not depend on it). */
class ReservedIds implements ReadonlySet<string> {
  private readonly counts = new Map<string, number>();

  get size(): number {
    return this.counts.size;
  }

  has(id: string): boolean {
    return this.counts.has(id);
  }

  /** Parts holding `id`. */
  count(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  add(id: string): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  delete(id: string): void {
    const n = this.counts.get(id) ?? 0;
    if (n <= 1) this.counts.delete(id);
    else this.counts.set(id, n - 1);
  }

  keys(): SetIterator<string> {
    return this.counts.keys();
  }

  values(): SetIterator<string> {
    return this.counts.keys();
  }

  *entries(): SetIterator<[string, string]> {
    for (const id of this.counts.keys()) yield [id, id];
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.counts.keys();
  }

  forEach(fn: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const id of this.counts.keys()) fn.call(thisArg, id, id, this);
  }
}

export class PreparedParts {
  private readonly parts = new Map<string, PreparedPart>();
  private readonly reservedIds = new ReservedIds();
  private readonly reservedClaims = new ReservedIds();
  private readonly claimsKept = new Set<string>();
  private heldBytes = 0;
  private heldTasks = 0;
  private heldPayloadBytes = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly limits: PreparedLimits = {
      maxParts: Number.POSITIVE_INFINITY,
      maxBytes: Number.POSITIVE_INFINITY,
    },
  ) {}

  /** Parts held. */
  get size(): number {
    return this.parts.size;
  }

  /** Encoded bytes of the parts held. */
  get bytes(): number {
    return this.heldBytes;
  }

  /**
   * Why a new part of `bytes` under `key` would not fit the limits now
   * (expired parts swept first; a part replacing its own key's counts
   * without the one it replaces), or undefined when it fits.
   */
  noRoomFor(key: string, bytes: number, now: number): string | undefined {
    this.sweep(now);
    const replaced = this.parts.get(key);
    const parts = this.parts.size - (replaced === undefined ? 0 : 1);
    const held = this.heldBytes - (replaced?.bytes ?? 0);
    if (parts >= this.limits.maxParts) return `${parts} prepared parts held (the limit)`;
    if (held + bytes > this.limits.maxBytes)
      return `${held} bytes of prepared parts held, and this part is ${bytes} (the limit is ${this.limits.maxBytes})`;
    return undefined;
  }

  /**
   * What the parts will add to the shard when committed (expired parts swept
   * first), without the part under `exceptKey`: the room a submit or prepare
   * under that key must leave for the others (Shard's `alsoHeld`). O(1).
   */
  holdings(now: number, exceptKey?: string): ShardHoldings {
    this.sweep(now);
    const except = exceptKey === undefined ? undefined : this.parts.get(exceptKey);
    return {
      liveTasks: this.heldTasks - (except?.ids.length ?? 0),
      storedBytes: this.heldPayloadBytes - (except?.payloadBytes ?? 0),
      idempotencyKeys: this.parts.size - (except === undefined ? 0 : 1),
    };
  }

  /** Whether some part held (expired ones swept first) has a task `pick` picks, or a link `pickLink` picks. */
  holdsAny(
    pick: (task: TaskInput) => boolean,
    now: number,
    pickLink?: (link: RemoteLink) => boolean,
  ): boolean {
    this.sweep(now);
    for (const part of this.parts.values()) {
      if (part.tasks.some(pick)) return true;
      if (pickLink !== undefined && part.links.some(pickLink)) return true;
    }
    return false;
  }

  /** Ids reserved by all parts, for the engine's check (`alsoTaken`). */
  get reserved(): ReadonlySet<string> {
    return this.reservedIds;
  }

  /** Ids whose claims the parts reserve here. */
  get claimed(): ReadonlySet<string> {
    return this.reservedClaims;
  }

  /** Whether some part held (expired ones swept first) claims an id `pick` picks. */
  claimsAny(pick: (taskId: string) => boolean, now: number): boolean {
    this.sweep(now);
    for (const id of this.reservedClaims) if (pick(id)) return true;
    return false;
  }

  /** The part under `key` had its claims made durable (a `claimsOnly` commit); it keeps its tasks. */
  keptClaims(key: string): void {
    if (this.parts.has(key)) this.claimsKept.add(key);
  }

  /** Whether the claims of the part under `key` are durable already. */
  claimsKeptFor(key: string): boolean {
    return this.claimsKept.has(key);
  }

  /** Ids claimed (or, as tasks, reserved) by a part other than the one under `key`. */
  claimedByOthers(ids: readonly string[], key: string, now: number): string[] {
    this.sweep(now);
    if (this.reservedClaims.size === 0 && this.reservedIds.size === 0) return [];
    const own = this.parts.get(key);
    const ownClaims = own ? new Set(own.claims.map((c) => c.taskId)) : undefined;
    const ownIds = own ? new Set(own.ids) : undefined;
    return ids.filter(
      (id) =>
        this.reservedClaims.count(id) > (ownClaims?.has(id) ? 1 : 0) ||
        this.reservedIds.count(id) > (ownIds?.has(id) ? 1 : 0),
    );
  }

  /** The live part under `key` (expired parts are swept first). */
  get(key: string, now: number): PreparedPart | undefined {
    this.sweep(now);
    return this.parts.get(key);
  }

  /**
   * Holds `tasks` under `key` until now + ttlMs; replaces (and refreshes) a
   * part with the same key. `bytes`: its request's wire size;
   * `payloadBytes`: its payloads' as the shard counts them.
   */
  add(
    key: string,
    tasks: readonly TaskInput[],
    now: number,
    bytes = 0,
    payloadBytes = 0,
    links: readonly RemoteLink[] = [],
    claims: readonly IdClaim[] = [],
  ): PreparedPart {
    const kept = this.claimsKept.has(key);
    this.remove(key);
    const part: PreparedPart = {
      key,
      tasks,
      links,
      ids: tasks.map((t) => t.id),
      expiresAt: now + this.ttlMs,
      bytes,
      payloadBytes,
      claims,
    };
    if (kept) this.claimsKept.add(key);
    this.parts.set(key, part);
    this.heldBytes += bytes;
    this.heldTasks += part.ids.length;
    this.heldPayloadBytes += payloadBytes;
    for (const id of part.ids) this.reservedIds.add(id);
    for (const c of claims) this.reservedClaims.add(c.taskId);
    return part;
  }

  /** Removes the part under `key` and returns it (undefined: none, or expired). */
  take(key: string, now: number): PreparedPart | undefined {
    this.sweep(now);
    const part = this.parts.get(key);
    if (part) this.remove(key);
    return part;
  }

  /** Drops the part under `key`; true if there was one. */
  remove(key: string): boolean {
    const part = this.parts.get(key);
    if (!part) return false;
    this.parts.delete(key);
    this.heldBytes -= part.bytes;
    this.heldTasks -= part.ids.length;
    this.heldPayloadBytes -= part.payloadBytes;
    for (const id of part.ids) this.reservedIds.delete(id);
    for (const c of part.claims) this.reservedClaims.delete(c.taskId);
    this.claimsKept.delete(key);
    return true;
  }

  /** Ids of `tasks` reserved by a part other than the one under `key`. */
  reservedByOthers(tasks: readonly { readonly id: string }[], key: string, now: number): string[] {
    this.sweep(now);
    if (this.reservedIds.size === 0) return [];
    const own = this.parts.get(key);
    const ownIds = own ? new Set(own.ids) : undefined;
    return tasks.filter((t) => this.reservedIds.count(t.id) > (ownIds?.has(t.id) ? 1 : 0)).map((t) => t.id);
  }

  /** Drops the parts whose time is up; returns their keys. */
  sweep(now: number): string[] {
    const expired: string[] = [];
    for (const [key, part] of this.parts) {
      if (part.expiresAt > now) break;
      this.remove(key);
      expired.push(key);
    }
    return expired;
  }
}
