/**
 * The reader's side of journal shipping (journal-stream.ts): applies a
 * shard's journal stream, message by message in stream order, to an LMDB
 * journal in a directory of its own, so that opening a Shard there is
 * ordinary recovery and finds the state the primary acknowledged.
 *
 *   base-begin   a new base starts: it is built in `<dir>-next`, beside the
 *                copy in use, which stays as it was until the base is whole
 *   base         its records, appended to `<dir>-next`
 *   lease-key    within a base: the shard's lease secret key, written into
 *                `<dir>` with the base (leases keep their secrets)
 *   base-end     the base is whole: `<dir>-next` becomes `<dir>`
 *   block        its records, appended to `<dir>` (skipped while there is
 *                no whole base: nothing to apply them to)
 *   takeover     a new owner: an unfinished base or unit before it is dropped
 *
 * A unit split over messages (`more`) is gathered until its last one; a
 * unit its writer never finished (the next message is of another run or
 * kind) is dropped: it was never acknowledged. So at any message boundary,
 * `<dir>` holds a whole base plus whole blocks: a prefix of what the
 * primary committed, which includes everything it acknowledged up to then.
 *
 * The directory is the follower's alone: it is emptied when the follower
 * starts (a follower always rebuilds from the stream's first message), and
 * refused if it holds anything but its LMDB files and the lease key (a
 * shard's directory has its cluster identity too).
 */
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { decodeBlock, LmdbJournal } from "@frontier/shard";
import {
  JournalHeader,
  JournalKind,
  JournalShippingError,
  JournalShippingErrorCode,
} from "./journal-stream.js";
import { LEASE_SECRET_KEY_FILE, LeaseSecrets } from "./lease-secrets.js";

/** One message of the stream, as the follower needs it. */
export interface JournalMessage {
  readonly seq: number;
  readonly header: (name: string) => string | undefined;
  readonly data: Uint8Array;
}

const FOLLOWER_FILES = new Set(["data.mdb", "lock.mdb", LEASE_SECRET_KEY_FILE]);

export class JournalFollower {
  /** The copy in use (a whole base applied), once there is one. */
  private current: LmdbJournal | undefined;
  /** A base being received, into `<dir>-next`, and its run. */
  private next: LmdbJournal | undefined;
  private nextRun: string | undefined;
  /** The lease secret key the base being received carries, if any. */
  private nextKey: Uint8Array | undefined;
  /** A unit split over messages, being gathered. */
  private unit: { kind: string; run: string; chunks: Uint8Array[] } | undefined;
  /** Appends queued to `current`, and to `next`: a failure is thrown by `settle` (and by the swap). */
  private appends: Promise<void>[] = [];
  private nextAppends: Promise<void>[] = [];
  /** Sequence of the last message applied. */
  lastSeq = 0;
  /** The run of the last whole base, and the origin that wrote it. */
  baseRun: string | undefined;
  origin: string | undefined;

  private constructor(readonly dataDir: string) {}

  /** Empties `dataDir` (refusing one that holds anything but LMDB files) and starts with no copy. */
  static open(dataDir: string): JournalFollower {
    refuseForeign(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}-next`, { recursive: true, force: true });
    return new JournalFollower(dataDir);
  }

  /** Whether a whole base was applied: the directory holds a copy a shard can open. */
  get hasCopy(): boolean {
    return this.current !== undefined;
  }

  /** Applies one message. Messages must come in stream order; a base-end waits for its base to be durable. */
  async apply(message: JournalMessage): Promise<void> {
    const kind = message.header(JournalHeader.KIND) ?? "";
    const run = message.header(JournalHeader.RUN) ?? "";
    const origin = message.header(JournalHeader.ORIGIN);
    const more = message.header(JournalHeader.MORE) === "1";
    // A unit its writer did not finish is dropped (never acknowledged).
    if (this.unit && (this.unit.kind !== kind || this.unit.run !== run)) this.unit = undefined;
    switch (kind) {
      case JournalKind.BASE_BEGIN:
        await this.dropNext();
        this.next = await LmdbJournal.open({ dataDir: `${this.dataDir}-next` });
        this.nextRun = run;
        break;
      case JournalKind.BASE:
      case JournalKind.BLOCK: {
        const chunks = this.unit?.chunks ?? [];
        chunks.push(message.data);
        if (more) {
          this.unit = { kind, run, chunks };
          break;
        }
        this.unit = undefined;
        const records = decodeBlock(concat(chunks));
        if (kind === JournalKind.BLOCK) {
          if (this.current !== undefined) this.appends.push(this.current.append(records));
        } else if (this.next !== undefined && this.nextRun === run) {
          this.nextAppends.push(this.next.append(records));
        }
        break;
      }
      case JournalKind.LEASE_KEY:
        if (this.next !== undefined && this.nextRun === run) this.nextKey = Uint8Array.from(message.data);
        break;
      case JournalKind.BASE_END:
        if (this.next !== undefined && this.nextRun === run) {
          await this.swap();
          this.baseRun = run;
          this.origin = origin;
        }
        break;
      case JournalKind.TAKEOVER:
        await this.dropNext();
        this.origin = origin;
        break;
      default:
      // Not a journal message: nothing to apply.
    }
    this.lastSeq = message.seq;
  }

  /** Resolves once every append queued is durable; throws the first one that failed. */
  async settle(): Promise<void> {
    const appends = this.appends.splice(0);
    await Promise.all(appends);
  }

  /** Closes the journals; a base not received whole is dropped. `<dir>` keeps the copy, ready for a shard to open. */
  async close(): Promise<void> {
    try {
      await this.settle();
    } finally {
      await this.dropNext();
      await this.current?.close();
      this.current = undefined;
    }
  }

  /** The base in `<dir>-next` is whole: it becomes the copy in use. */
  private async swap(): Promise<void> {
    await this.settle();
    await Promise.all(this.nextAppends.splice(0));
    await this.next!.close();
    this.next = undefined;
    await this.current?.close();
    this.current = undefined;
    rmSync(this.dataDir, { recursive: true, force: true });
    renameSync(`${this.dataDir}-next`, this.dataDir);
    if (this.nextKey !== undefined) LeaseSecrets.install(this.dataDir, this.nextKey);
    this.nextKey = undefined;
    this.current = await LmdbJournal.open({ dataDir: this.dataDir });
  }

  private async dropNext(): Promise<void> {
    for (const append of this.nextAppends.splice(0)) append.catch(() => {});
    if (this.next !== undefined) {
      // Its appends are dropped with it; the first failure of the copy in use is still reported by settle.
      await this.next.close().catch(() => {});
      this.next = undefined;
    }
    this.nextRun = undefined;
    this.nextKey = undefined;
    rmSync(`${this.dataDir}-next`, { recursive: true, force: true });
  }
}

function refuseForeign(dataDir: string): void {
  if (!existsSync(dataDir)) return;
  const other = readdirSync(dataDir).filter((name) => !FOLLOWER_FILES.has(name));
  if (other.length > 0)
    throw new JournalShippingError(
      JournalShippingErrorCode.NOT_A_STANDBY_DIRECTORY,
      `${dataDir} holds ${other.slice(0, 3).join(", ")}: a standby rebuilds its directory from the stream, ` +
        "and empties it first; give it a directory of its own (empty, or a standby's)",
    );
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
