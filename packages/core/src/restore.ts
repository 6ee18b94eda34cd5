/**
 * The parts of Scheduler.restore that need none of the engine's indexes:
 * the change records folded into a snapshot's task records, and the
 * scratch structures the engine's load pass uses (a growable handle list, a
 * cache of repeated strings, an order check). The load itself, which builds
 * the engine's indexes from the records, stays in the engine (scheduler.ts).
 */
import { InvalidArgumentError } from "./errors.js";
import { hashId } from "./id-index.js";
import type { Change, EngineMeta, RestoreSource, TaskRecord } from "./types.js";

/**
 * A snapshot's records with `changes` applied in order: the latest record of
 * each task still there, and the latest meta. O(n + changes).
 */
export function foldChanges(
  snapshot: RestoreSource,
  changes: readonly Change[],
): { meta: EngineMeta; records: Map<string, TaskRecord> } {
  const records = new Map<string, TaskRecord>();
  for (const r of snapshot.tasks) records.set(r.spec.id, r);
  let meta = snapshot.meta;
  for (const c of changes) {
    switch (c.kind) {
      case "add":
        records.set(c.spec.id, { spec: c.spec, status: c.status });
        break;
      case "set": {
        const r = records.get(c.id);
        if (!r) throw new InvalidArgumentError(`change for unknown task ${JSON.stringify(c.id)}`);
        records.set(c.id, { spec: r.spec, status: c.status });
        break;
      }
      case "drop":
        records.delete(c.id);
        break;
      case "meta":
        meta = c.meta;
        break;
      default:
        unreachable(c);
    }
  }
  return { meta, records };
}

/** Whether `handles` are in nondecreasing order of `by`. */
export function ascending(handles: Int32Array, by: Float64Array): boolean {
  for (let i = 1; i < handles.length; i++) if (by[handles[i]!]! < by[handles[i - 1]!]!) return false;
  return true;
}

/** A growable list of handles (restore's scratch space). */
export class HandleList {
  items: Int32Array;
  length = 0;

  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(16, capacity));
  }

  push(h: number): void {
    if (this.length === this.items.length) {
      const grown = new Int32Array(2 * this.length);
      grown.set(this.items);
      this.items = grown;
    }
    this.items[this.length++] = h;
  }

  view(): Int32Array {
    return this.items.subarray(0, this.length);
  }
}

/**
 * Hands out one shared copy of strings that many rows repeat (workflow ids,
 * lease owners): each decoded row carries its own copy, ~30 bytes a task
 * that the GC would also copy while the restore runs. Direct-mapped, so a
 * value evicts another with the same slot: memory stays bounded however
 * many distinct values there are.
 */
export class StringCache {
  private readonly slots: (string | undefined)[] = new Array<string | undefined>(1024).fill(undefined);

  share(value: string | undefined): string | undefined {
    if (value === undefined) return value;
    const i = hashId(value) & 1023;
    const cached = this.slots[i];
    if (cached === value) return cached;
    this.slots[i] = value;
    return value;
  }
}

function unreachable(value: never): never {
  throw new InvalidArgumentError(`unexpected change ${JSON.stringify(value)}`);
}
