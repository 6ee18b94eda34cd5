/**
 * Test-only instrumentation of the `frontier shard` processes the chaos
 * harness starts, loaded with `node --import` before the CLI. Nothing in
 * the product knows about it; each part is off unless its variable is set.
 *
 *  - FRONTIER_CHAOS_TAP=<file>: the shard tap. Every journal block, once
 *    durable, is appended to the file as one JSON line (history.ts
 *    `TapBlock`): its status changes and the shard clock it carries. The
 *    journal is wrapped where the shard opens it (`LmdbJournal.open`), so
 *    the tap sees exactly what the shard made durable, in order; a block
 *    refused (a fenced zombie) never appears. A SIGKILL between a block
 *    becoming durable and its line being written loses that line: the tap
 *    may miss a block, never invent one.
 *  - FRONTIER_CHAOS_SHARD=<id>: the shard id the tap lines carry.
 *  - FRONTIER_CHAOS_STALL_MS=<ms>: on SIGUSR2, block the event loop that
 *    long — a long synchronous pause (a GC storm, a CPU-starved VM), during
 *    which no timer fires and no request is read, while the clock runs on.
 *    Afterwards it prints `{"chaos":"stalled","ms":…}` on stdout.
 */
import { openSync, writeSync } from "node:fs";
import { type JournalRecord, LmdbJournal } from "@frontier/shard";
import type { TapBlock, TapChange } from "./history.js";

const tapFile = process.env["FRONTIER_CHAOS_TAP"];
const shard = process.env["FRONTIER_CHAOS_SHARD"] ?? "shard";
const stallMs = Number(process.env["FRONTIER_CHAOS_STALL_MS"] ?? 0);

if (tapFile) {
  const fd = openSync(tapFile, "a");
  const open = LmdbJournal.open.bind(LmdbJournal);
  LmdbJournal.open = async (options) => {
    const journal = await open(options);
    const append = journal.append.bind(journal);
    journal.append = (records) => {
      const durable = append(records);
      // Appends become durable in call order, so these lines are written in that order.
      durable.then(
        () => tap(fd, records),
        () => {},
      );
      return durable;
    };
    return journal;
  };
}

if (stallMs > 0) {
  process.on("SIGUSR2", () => {
    const start = performance.now();
    while (performance.now() < start + stallMs) {
      // A long synchronous pause: nothing else runs.
    }
    // Tells the harness the stall happened (stdout carries the shard's JSON lines).
    process.stdout.write(
      `${JSON.stringify({ chaos: "stalled", ms: Math.round(performance.now() - start) })}\n`,
    );
  });
}

function tap(fd: number, records: readonly JournalRecord[]): void {
  const changes: TapChange[] = [];
  let clock = 0;
  for (const r of records) {
    if (r.kind === "clock") clock = r.at;
    else if (r.kind === "add" || r.kind === "set") {
      const id = r.kind === "add" ? r.spec.id : r.id;
      const s = r.status;
      changes.push({
        id,
        state: s.state,
        token: s.token,
        attempts: s.attempts,
        ...(s.leaseExpiresAt !== undefined ? { expiresAt: s.leaseExpiresAt } : {}),
        ...(r.kind === "add" ? { added: true } : {}),
      });
    }
  }
  if (changes.length === 0) return;
  const block: TapBlock = { k: "tap", shard, pid: process.pid, clock, at: Date.now(), changes };
  writeSync(fd, `${JSON.stringify(block)}\n`);
}
