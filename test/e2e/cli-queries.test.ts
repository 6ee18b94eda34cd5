/**
 * `frontier list`, `show`, `retry` and `top` as an operator runs them,
 * against `frontier start` in a child process with the credentials it made:
 * a workflow whose first task fails for good, found by state, drawn as a
 * DAG, retried (admin only) and run again; `top` once when piped, and live
 * (ANSI, in place, Ctrl-C) when its stdout is a terminal.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type Io, main } from "@frontier/cli";
import { slotOf } from "@frontier/protocol";
import { LmdbJournal } from "@frontier/shard";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, freePort, frontier, type StartedFrontier, startFrontier, until } from "./harness.js";

const CLUSTER = "querytest";
/** The escape that starts an ANSI control sequence. */
const ESC = String.fromCharCode(0x1b);
let dir: string;
let natsUrl: string;
let started: StartedFrontier | undefined;

const credentials = () => join(dir, "data", "credentials");
const target = () => ["--nats", natsUrl, "--cluster", CLUSTER, "--credentials", credentials()];
const cli = ([command, ...rest]: readonly string[], input?: string): Promise<CliResult> =>
  frontier([command ?? "", ...target(), ...rest], input === undefined ? {} : { input });

function expectOneLineFailure(r: CliResult, code: number, mentions: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(mentions);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-cli-queries-"));
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  started = await startFrontier([
    "--nats",
    natsUrl,
    "--cluster",
    CLUSTER,
    "--data",
    join(dir, "data"),
    "--shards",
    "2",
    // The durability of the last test below; the others run the same either way.
    "--durability",
    "committed",
    // Ids unique per shard only (docs/cluster.md, "One id space per cluster"): what lets the test
    // of a task id held by two workflows below hold one; the others run the same either way.
    "--id-space",
    "workflow",
  ]);
  await until(async () => {
    const r = await cli(["status", "--json"]);
    if (r.code !== 0) return false;
    const { shards } = JSON.parse(r.stdout) as { shards: { answered: string[]; missing: unknown[] } };
    return shards.answered.length === 2 && shards.missing.length === 0;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  await started?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("frontier list, show, retry", () => {
  it("finds a failed task, draws its workflow, retries it as admin only, and it runs again", async () => {
    const tasks = [
      { id: "fetch", deadline: "+10m", workflowId: "rel-7", maxAttempts: 1 },
      { id: "build", deadline: "+20m", workflowId: "rel-7", prerequisites: ["fetch"] },
      { id: "test\u001b[31m", deadline: "+30m", workflowId: "rel-7", prerequisites: ["build"] },
      { id: "lint", deadline: "+25m", workflowId: "rel-7", prerequisites: ["fetch"] },
      { id: "other", deadline: "+1h" },
    ];
    expect((await cli(["submit", "-"], JSON.stringify(tasks))).code).toBe(0);
    const leased = JSON.parse((await cli(["lease", "--json"])).stdout) as {
      taskId: string;
      token: number;
      secret: string;
    }[];
    expect(leased.map((l) => l.taskId)).toEqual(["fetch"]);
    const [l] = leased;
    const failed = await cli([
      "fail",
      "fetch",
      "--workflow",
      "rel-7",
      "--token",
      String(l!.token),
      "--secret",
      l!.secret,
      "--reason",
      "mirror down",
    ]);
    expect(failed.stdout).toBe("failed fetch for good\n");

    const [byState, json, dag, shown] = await Promise.all([
      cli(["list", "--state", "failed,cancelled"]),
      cli(["list", "--limit", "2", "--json"]),
      cli(["show", "--workflow", "rel-7"]),
      cli(["show", "fetch", "--workflow", "rel-7"]),
    ]);
    const rows = byState.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^ID +STATE +DEADLINE +ATTEMPTS +WORKFLOW +REASON$/);
    expect(rows.slice(1).map((r) => r.split(/ +/).slice(0, 2))).toEqual([
      ["fetch", "FAILED"],
      ["build", "CANCELLED"],
      ["lint", "CANCELLED"],
      ["test\\u001b[31m", "CANCELLED"],
    ]);
    expect(rows[1]).toMatch(/1\/1 +rel-7 +failed after 1 attempt\(s\): mirror down$/);
    // The escape character in an id is printed escaped, never sent to the terminal.
    expect(byState.stdout).not.toContain("\u001b");

    // Pages: two tasks, then the rest from the cursor printed, each task once.
    const first = JSON.parse(json.stdout) as {
      tasks: { id: string }[];
      cursor: string;
      shards: { missing: unknown[] };
    };
    expect(first.tasks).toHaveLength(2);
    expect(first.shards.missing).toEqual([]);
    const rest = JSON.parse(
      (await cli(["list", "--limit", "10", "--cursor", first.cursor, "--json"])).stdout,
    ) as {
      tasks: { id: string }[];
      cursor: string | null;
    };
    expect(rest.cursor).toBeNull();
    expect([...first.tasks, ...rest.tasks].map((t) => t.id).sort()).toEqual(
      ["build", "fetch", "lint", "other", "test\u001b[31m"].sort(),
    );

    expect(dag.stdout.split("\n").slice(0, 5)).toEqual([
      "workflow rel-7: 4 tasks — FAILED 1, CANCELLED 3",
      expect.stringMatching(/^ {2}fetch {2}FAILED {2}\S+ {2}failed after 1 attempt\(s\): mirror down$/),
      expect.stringMatching(/^ {4}build {2}CANCELLED /),
      expect.stringMatching(/^ {6}test\\u001b\[31m {2}CANCELLED /),
      expect.stringMatching(/^ {4}lint {2}CANCELLED /),
    ]);
    expect(shown.stdout).toMatch(/^task fetch\n {2}state +FAILED\n/);
    expect(shown.stdout).toMatch(/\n {2}dependents +build \(CANCELLED\), lint \(CANCELLED\)\n/);

    // A submitter may read but not retry; the admin (retry's default role) may.
    expectOneLineFailure(
      await cli(["retry", "fetch", "--workflow", "rel-7", "--role", "submitter"]),
      1,
      /NATS does not let this connection publish to frontier\.querytest\.coord\.retry/,
    );
    expect((await cli(["show", "fetch", "--workflow", "rel-7", "--json"])).stdout).toContain(
      '"state":"FAILED"',
    );
    expectOneLineFailure(
      await cli(["retry", "build", "--workflow", "rel-7"]),
      1,
      /INVALID_STATE.*prerequisite "fetch" ended FAILED: retry it first/,
    );
    const retried = await cli(["retry", "fetch", "--workflow", "rel-7"]);
    expect(retried.stdout).toBe("retried fetch: RUNNABLE, from attempt 1\n");
    expect((await cli(["retry", "build", "--workflow", "rel-7"])).stdout).toBe(
      "retried build: WAITING for its prerequisites, then from attempt 1\n",
    );
    expectOneLineFailure(
      await cli(["retry", "fetch", "--workflow", "rel-7"]),
      1,
      /INVALID_STATE.*it is RUNNABLE, not ended badly/,
    );
    const again = JSON.parse((await cli(["lease", "--json"])).stdout) as {
      taskId: string;
      attempt: number;
    }[];
    expect(again.map((x) => [x.taskId, x.attempt])).toEqual([["fetch", 1]]);
  }, 120_000);

  it("refuses bad input in one line and sends nothing", async () => {
    const [state, cursor, limit, show] = await Promise.all([
      cli(["list", "--state", "DONE"]),
      cli(["list", "--cursor", "not-a-cursor"]),
      cli(["list", "--limit", "1001"]),
      cli(["show"]),
    ]);
    expectOneLineFailure(state, 2, /unknown state "DONE"/);
    expectOneLineFailure(cursor, 2, /--cursor is not a cursor this command printed/);
    expectOneLineFailure(limit, 2, /--limit/);
    expectOneLineFailure(show, 2, /expected a task ID, or --workflow W/);
  }, 60_000);
});

describe("a task id held by two workflows (a cluster started with --id-space workflow)", () => {
  it("refuses to act on the id alone (AMBIGUOUS_TASK, naming both), and acts with --workflow", async () => {
    // Two workflows on the two shards (`start --shards 2` gives shard k the slots ≡ k mod 2).
    const found: string[] = [];
    for (let i = 0; found.length < 2; i++) {
      const w = `dup-wf-${i}`;
      if (found.every((f) => slotOf(f) % 2 !== slotOf(w) % 2)) found.push(w);
    }
    const [a, b] = found as [string, string];
    for (const w of [a, b]) {
      const r = await cli(["submit", "-"], JSON.stringify([{ id: "dup", deadline: "+1h", workflowId: w }]));
      expect(r.code, r.stderr).toBe(0);
    }
    const [cancel, status] = await Promise.all([
      cli(["cancel", "dup", "--role", "admin"]),
      cli(["status", "dup"]),
    ]);
    for (const r of [cancel, status]) {
      expectOneLineFailure(r, 1, /AMBIGUOUS_TASK: 2 tasks have the id "dup".*nothing was done.*--workflow/);
      expect(r.stderr).toContain(JSON.stringify(a));
      expect(r.stderr).toContain(JSON.stringify(b));
    }
    expect((await cli(["cancel", "dup", "--workflow", a, "--role", "admin"])).code).toBe(0);
    const [mine, theirs] = await Promise.all([
      cli(["status", "dup", "--workflow", a, "--json"]),
      cli(["status", "dup", "--workflow", b, "--json"]),
    ]);
    expect(JSON.parse(mine.stdout)).toMatchObject({ state: "CANCELLED" });
    expect(JSON.parse(theirs.stdout)).toMatchObject({ state: "RUNNABLE" });
  }, 60_000);
});

describe("frontier top", () => {
  it("prints one snapshot when stdout is not a terminal", async () => {
    const r = await cli(["top"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^frontier top — cluster querytest — .* — 2 of 2 shards answered\n {2}backlog {3}WAITING \d+/,
    );
    expect(r.stdout).not.toContain("\u001b");
    // A row per shard, each with the half of the slots it owns.
    expect(r.stdout).toMatch(/^ {2}shard {4}slots {2}waiting {2}runnable {2}leased/m);
    expect(r.stdout).toMatch(/^ {2}shard-0 {4}512 /m);
    expect(r.stdout).toMatch(/^ {2}shard-1 {4}512 /m);
  }, 60_000);

  it("redraws in place on a terminal, with rates from successive readings, until Ctrl-C", async () => {
    const chunks: string[] = [];
    let frames = 0;
    let interrupt: ((signal: NodeJS.Signals) => void) | undefined;
    const stdout = Object.assign(
      new Writable({
        write(chunk, _enc, done) {
          const text = String(chunk);
          chunks.push(text);
          if (text.startsWith("\u001b[Hfrontier top") && ++frames === 2) interrupt?.("SIGINT");
          done();
        },
      }),
      { isTTY: true, columns: 72, rows: 40 },
    );
    const io: Io = {
      stdout,
      stderr: new Writable({ write: (_c, _e, done) => done() }),
      stdin: process.stdin,
      env: process.env,
      cwd: process.cwd(),
      onSignal(listener) {
        interrupt = listener;
        return () => {
          interrupt = undefined;
        };
      },
    };
    const code = await main(["top", ...target()], io);
    expect(code).toBe(0);
    const out = chunks.join("");
    // On the alternate screen with the cursor hidden, each frame drawn from home; the terminal
    // given back on Ctrl-C.
    expect(out.startsWith("\u001b[?1049h\u001b[?25l")).toBe(true);
    expect(out.split("\u001b[H").length - 1).toBe(2);
    expect(out.endsWith("\u001b[?25h\u001b[?1049l")).toBe(true);
    // The first frame has no rates yet; the second has them, from the two readings.
    expect(out).toMatch(/rates {5}completed {3}- {4}failed/);
    expect(out).toMatch(/rates {5}completed \d+\.\d\/s/);
    // Each shard's row (no slots: 72 columns leave them out): no completion rate in the first
    // frame, one in the second.
    const plain = out.replace(new RegExp(`${ESC}\\[\\??\\d*[A-Za-z]`, "g"), "");
    expect(plain).toMatch(/^ {2}shard {4}waiting {2}runnable {2}leased {2}done\/s {2}deadline/m);
    expect(plain).toMatch(/^ {2}shard-0 +\d+ +\d+ +\d+ +- /m);
    expect(plain).toMatch(/^ {2}shard-1 +\d+ +\d+ +\d+ +\d+\.\d /m);
    // Within the terminal's 72 columns, cut with "…" where longer.
    const lines = plain.split("\n");
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(72);
    expect(lines.some((line) => line.endsWith("…"))).toBe(true);
    expect(interrupt).toBeUndefined();
  }, 60_000);
});

describe("frontier start --durability committed", () => {
  it("reaches every shard: each journal holds a fencing-token ceiling above the tokens it handed out", async () => {
    const leased = JSON.parse((await cli(["lease", "--json", "--max", "1"])).stdout) as { token: number }[];
    await started?.stop();
    for (const shard of ["shard-0", "shard-1"]) {
      const journal = await LmdbJournal.open({ dataDir: join(dir, "data", "shards", shard) });
      try {
        const { tokenCeiling, meta } = journal.load();
        expect(tokenCeiling, shard).toBeGreaterThan(meta?.tokenSeq ?? 0);
        for (const l of leased) expect(tokenCeiling).toBeGreaterThan(l.token);
      } finally {
        await journal.close();
      }
    }
  }, 60_000);
});
