/**
 * The follower alone (journal-follower.ts), fed the messages a stream holds
 * after the ways a writer can end: a base or a unit cut short, a new run's
 * base, a takeover. At every message boundary its directory holds a whole
 * base and whole blocks, never half of either.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeBlock, type JournalRecord, Shard } from "@frontier/shard";
import { afterAll, describe, expect, it } from "vitest";
import { JournalFollower, type JournalMessage } from "./journal-follower.js";
import { JournalHeader, JournalKind, JournalShippingErrorCode } from "./journal-stream.js";

const root = mkdtempSync(join(tmpdir(), "frontier-follower-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A stream's messages, numbered as they are made. */
function stream() {
  let seq = 0;
  const message = (kind: string, run: string, data: Uint8Array, more = false): JournalMessage => {
    const headers: Record<string, string> = {
      [JournalHeader.KIND]: kind,
      [JournalHeader.RUN]: run,
      [JournalHeader.ORIGIN]: `dir-${run}`,
      ...(more ? { [JournalHeader.MORE]: "1" } : {}),
    };
    return { seq: ++seq, header: (name) => headers[name], data };
  };
  const marker = Uint8Array.of(0xc0);
  return {
    begin: (run: string) => message(JournalKind.BASE_BEGIN, run, marker),
    end: (run: string) => message(JournalKind.BASE_END, run, marker),
    base: (run: string, records: JournalRecord[]) => message(JournalKind.BASE, run, encodeBlock(records)),
    block: (run: string, records: JournalRecord[]) => message(JournalKind.BLOCK, run, encodeBlock(records)),
    /** A block split over messages of `size` bytes. */
    split: (run: string, records: JournalRecord[], size: number) => {
      const bytes = encodeBlock(records);
      const parts: JournalMessage[] = [];
      for (let at = 0; at < bytes.length; at += size)
        parts.push(message(JournalKind.BLOCK, run, bytes.subarray(at, at + size), at + size < bytes.length));
      return parts;
    },
    takeover: (run: string) => message(JournalKind.TAKEOVER, run, marker),
  };
}

/** The records of a task added, as the engine journals a submit. */
function add(id: string, deadline = 1): JournalRecord[] {
  return [
    {
      kind: "add",
      spec: { id, prerequisites: [], maxAttempts: 3, hardDeadline: false, onPrerequisiteFailure: "cancel" },
      status: { state: "RUNNABLE", deadline, attempts: 0, token: 0, runnableSince: 0 },
    },
  ];
}

/** Applies `messages`, closes the follower, and reads which tasks its directory holds. */
async function held(messages: readonly JournalMessage[]): Promise<{ hasCopy: boolean; ids: string[] }> {
  const dataDir = join(root, `d${dirs++}`);
  const follower = JournalFollower.open(dataDir);
  for (const m of messages) await follower.apply(m);
  await follower.settle();
  const hasCopy = follower.hasCopy;
  await follower.close();
  if (!hasCopy) return { hasCopy, ids: [] };
  const shard = await Shard.open({ dataDir });
  try {
    return { hasCopy, ids: ["a", "b", "c", "d", "e"].filter((id) => shard.getTask(id) !== undefined) };
  } finally {
    await shard.close();
  }
}

describe("a journal follower", () => {
  it("holds nothing before a whole base, then the base and the whole blocks after it", async () => {
    const s = stream();
    expect(await held([s.block("r0", add("a")), s.begin("r1"), s.base("r1", add("b"))])).toEqual({
      hasCopy: false,
      ids: [],
    });
    const t = stream();
    expect(
      await held([t.begin("r1"), t.base("r1", add("a")), t.end("r1"), t.block("r1", add("b"))]),
    ).toMatchObject({ hasCopy: true, ids: ["a", "b"] });
  });

  it("puts a block split over messages back together, and drops one its writer never finished", async () => {
    const s = stream();
    const whole = s.split("r1", add("c"), 40);
    expect(whole.length).toBeGreaterThan(1);
    const cut = s.split("r1", add("d"), 40).slice(0, -1);
    // Its writer stopped mid-block (a run's units can be cut only at its end: a lost part stops the
    // chain); the next message is another run's.
    const messages = [s.begin("r1"), s.base("r1", add("a")), s.end("r1"), ...whole, ...cut, s.takeover("r2")];
    expect(await held(messages)).toMatchObject({ ids: ["a", "c"] });
  });

  it("keeps the copy in use while a new base comes, and through a base that never ends", async () => {
    const s = stream();
    const first = [s.begin("r1"), s.base("r1", add("a")), s.end("r1"), s.block("r1", add("b"))];
    const unfinished = [s.begin("r2"), s.base("r2", add("c"))];
    expect(await held([...first, ...unfinished])).toMatchObject({ ids: ["a", "b"] });
    // A takeover ends the unfinished base too; the next base replaces the copy whole.
    const t = stream();
    const replaced = [
      ...[t.begin("r1"), t.base("r1", add("a")), t.end("r1")],
      ...[t.begin("r2"), t.base("r2", add("c"))],
      t.takeover("r3"),
      ...[t.begin("r3"), t.base("r3", add("d")), t.base("r3", add("e")), t.end("r3")],
    ];
    expect(await held(replaced)).toMatchObject({ ids: ["d", "e"] });
  });

  it("refuses a directory that holds more than a follower's files, and changes nothing in it", () => {
    const dataDir = join(root, `d${dirs++}`);
    rmSync(dataDir, { recursive: true, force: true });
    const record = join(dataDir, "cluster-identity.json");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(record, "{}");
    expect(() => JournalFollower.open(dataDir)).toThrow(
      expect.objectContaining({ code: JournalShippingErrorCode.NOT_A_STANDBY_DIRECTORY }),
    );
    expect(readFileSync(record, "utf8")).toBe("{}");
  });
});
