/**
 * Crash harness: a child process runs a shard under random operations and
 * reports each acknowledgement as it arrives (child.ts); it is killed with
 * SIGKILL at a random point; the directory is reopened here and every
 * acknowledgement checked (check.ts). A scenario runs one to three such
 * rounds on one directory, so later rounds start from recovered state with
 * leases of a dead process still live. Scenarios repeat, with fresh seeds,
 * until the time budget is spent.
 *
 * FRONTIER_CRASH_BUDGET_MS (default 40000) sets the budget; FRONTIER_CRASH_SEED replays the
 * same sequence of seeds and kill delays (the interleaving still varies).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Shard } from "@frontier/shard";
import { afterAll, expect, it } from "vitest";
import { checkRecovery, type RecoveredTask } from "./check.js";
import { type Event, HARNESS_SHARD_OPTIONS, seededRandom } from "./protocol.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const child = join(repoRoot, "test", "crash", "child.ts");
const budgetMs = Number(process.env["FRONTIER_CRASH_BUDGET_MS"] ?? 40_000);
const firstSeed = Number(process.env["FRONTIER_CRASH_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
const root = mkdtempSync(join(tmpdir(), "frontier-crash-"));
/** Children still running: killed when the test ends, however it ends. */
const running = new Set<ChildProcess>();
afterAll(async () => {
  await Promise.all(
    [...running].map((proc) => {
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGKILL");
      return exited;
    }),
  );
  rmSync(root, { recursive: true, force: true });
});

/** Runs one child until `killAfterMs` past its "ready", SIGKILLs it, and returns the complete lines it wrote. */
function runRound(
  dataDir: string,
  seed: number,
  durability: string,
  prefix: string,
  killAfterMs: number,
): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", child, dataDir, String(seed), durability, prefix],
      // stdin stays open: the child exits when it closes, should this process die first.
      { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] },
    );
    running.add(proc);
    let stdout = "";
    let stderr = "";
    let killTimer: NodeJS.Timeout | undefined;
    proc.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!killTimer && stdout.includes('"t":"ready"'))
        killTimer = setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    proc.on("error", reject);
    proc.on("exit", (code, signal) => {
      running.delete(proc);
      clearTimeout(killTimer);
      if (signal !== "SIGKILL") {
        reject(
          new Error(
            `child exited on its own (code ${code}, signal ${signal}): ${stderr}\n${stdout.slice(-2000)}`,
          ),
        );
        return;
      }
      // The last line may be cut short by the kill: it was never fully reported.
      resolve(
        stdout
          .split("\n")
          .slice(0, -1)
          .map((line) => JSON.parse(line) as Event),
      );
    });
  });
}

/**
 * Reopens the directory and checks the recovered state. The shard's clock is
 * frozen at the recovered high-water mark: reads run due timers, and a live
 * clock would expire leases after the kill, which is not what was recovered.
 */
async function check(dataDir: string, events: readonly Event[]): Promise<string[]> {
  const checkedAt = Date.now();
  const shard = await Shard.open({
    dataDir,
    ...HARNESS_SHARD_OPTIONS,
    clock: { wallNow: () => 0, monotonicNow: () => 0 },
  });
  try {
    return checkRecovery(events, (id) => shard.getTask(id) as RecoveredTask | undefined, checkedAt);
  } finally {
    await shard.close();
  }
}

/** Two scenarios run side by side, each on its own directory with its own seeds. */
const LANES = 2;

it(
  "keeps every acknowledgement across SIGKILLs at random points",
  async () => {
    const started = Date.now();
    const totals = { scenarios: 0, kills: 0, acks: 0, leases: 0, completes: 0 };
    let failed = false;
    const lane = async (laneNumber: number) => {
      const random = seededRandom(firstSeed + laneNumber);
      while (!failed && (Date.now() - started < budgetMs - 4_000 || totals.kills < 3)) {
        const scenario = totals.scenarios++;
        const dataDir = join(root, `s${scenario}`);
        const durability = scenario % 2 === 0 ? "flushed" : "committed";
        const rounds = 1 + Math.floor(random() * 3);
        const events: Event[] = [];
        for (let round = 0; round < rounds; round++) {
          const seed = Math.floor(random() * 2 ** 31);
          // Mostly mid-run, sometimes right after opening.
          const killAfterMs = random() < 0.2 ? Math.floor(random() * 20) : 20 + Math.floor(random() * 600);
          events.push(...(await runRound(dataDir, seed, durability, `s${scenario}r${round}`, killAfterMs)));
          totals.kills++;
          const context = `seed ${firstSeed} lane ${laneNumber}, scenario ${scenario} (${durability}), round ${round} (seed ${seed}, kill after ${killAfterMs} ms)`;
          expect(await check(dataDir, events), context).toEqual([]);
        }
        totals.acks += events.filter((e) => e.t !== "req" && e.t !== "ready").length;
        totals.leases += events.filter((e) => e.t === "lease").length;
        totals.completes += events.filter((e) => e.t === "complete").length;
      }
    };
    // One lane's failure stops the others at their next round.
    await Promise.all(
      Array.from({ length: LANES }, (_, i) =>
        lane(i).catch((error: unknown) => {
          failed = true;
          throw error;
        }),
      ),
    );
    console.log(`crash harness: ${JSON.stringify(totals)} in ${Date.now() - started} ms (seed ${firstSeed})`);
    // The harness must have exercised something before its kills.
    expect(totals.leases).toBeGreaterThan(5 * totals.kills);
    expect(totals.completes).toBeGreaterThan(totals.kills);
  },
  budgetMs + 60_000,
);
