/**
 * A journal replica kept in memory, for the shard's own tests of journal
 * shipping (the JetStream one is @frontier/cluster's, tested against a real
 * nats-server). It keeps what a replica must — the base, then blocks, in
 * the order shipped — and can hold its answers back (a slow or paused
 * stream) or refuse (another owner took the copy over).
 */

import { decodeBlock, type JournalReplica } from "./journal-replica.js";
import { LmdbJournal } from "./lmdb-journal.js";

export class MemoryReplica implements JournalReplica {
  /** What the copy holds: the latest base's parts and the blocks since, encoded. */
  readonly held: Uint8Array[] = [];
  /** Blocks shipped while held back, with their answers. */
  private readonly waiting: { block: Uint8Array; resolve: () => void }[] = [];
  private holding = false;
  private refusal: Error | undefined;
  /** Blocks shipped (held or not), and new bases shipped while the shard ran. */
  shipped = 0;
  rebases = 0;

  async open(base: Iterable<Uint8Array>): Promise<void> {
    if (this.refusal) throw this.refusal;
    this.held.length = 0;
    for (const part of base) this.held.push(part);
  }

  /** A new base: what came before is dropped, as a stream purges it. */
  async rebase(base: Iterable<Uint8Array>): Promise<void> {
    if (this.refusal) throw this.refusal;
    this.rebases++;
    this.held.length = 0;
    for (const part of base) this.held.push(part);
  }

  ship(block: Uint8Array): Promise<void> {
    this.shipped++;
    if (this.refusal) return Promise.reject(this.refusal);
    if (!this.holding) {
      this.held.push(block);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ block, resolve }));
  }

  async close(): Promise<void> {}

  /** Answers nothing until `release`. */
  hold(): void {
    this.holding = true;
  }

  /** Takes every block held back, in order, and answers them. */
  release(): void {
    this.holding = false;
    for (const { block, resolve } of this.waiting.splice(0)) {
      this.held.push(block);
      resolve();
    }
  }

  /** Refuses every block from now on, and the blocks held back. */
  refuse(error: Error): void {
    this.refusal = error;
    this.waiting.splice(0);
  }

  /** Rebuilds the copy into a fresh directory: every record held, appended in order to an empty journal. */
  async restoreInto(dataDir: string): Promise<void> {
    const journal = await LmdbJournal.open({ dataDir });
    try {
      journal.load();
      for (const block of this.held) await journal.append(decodeBlock(block));
    } finally {
      await journal.close();
    }
  }
}
