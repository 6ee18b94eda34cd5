/**
 * The `frontier` CLI as a user runs it: `frontier start` in a child process
 * (starting its own nats-server, as on a fresh machine), then the client
 * commands against it, each a separate process. Output is checked as a user
 * sees it and, with --json, as a script reads it. Bad input: one line on
 * stderr, a non-zero exit, never a stack trace.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "@frontier/nats-testing";
import { slotOfTask } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliResult,
  freePort,
  frontier,
  REPO_ROOT,
  type StartedFrontier,
  startFrontier,
  until,
} from "./harness.js";

const CLUSTER = "clitest";
/** The shards' retry backoff base, ms (`start --backoff-base-ms`). */
const BACKOFF_BASE_MS = 20_000;
let dir: string;
let natsUrl: string;
let started: StartedFrontier | undefined;
let server: ChildProcess;
let info: {
  nats: string;
  natsServer: { pid: number; store: string } | "external";
  credentials: string | null;
  metrics: string | null;
};

/** The credentials `frontier start` made for the NATS server it started. */
const credentials = () => join(dir, "data", "credentials");

/** `frontier …` against the test cluster, each command as its own role (from the credentials directory). */
const cli = ([command, ...rest]: readonly string[], input?: string): Promise<CliResult> =>
  frontier(
    [command ?? "", "--nats", natsUrl, "--cluster", CLUSTER, "--credentials", credentials(), ...rest],
    input === undefined ? {} : { input },
  );

/** What a failure must look like: exactly one line on stderr, no stack trace, a non-zero exit. */
function expectOneLineFailure(r: CliResult, code: number, mentions: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^frontier[ :]/);
  expect(lines[0]).toMatch(mentions);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-cli-"));
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
    "--metrics-port",
    "0",
    // Longer than the default (1 s), so the test below sees the flag at work.
    "--backoff-base-ms",
    String(BACKOFF_BASE_MS),
  ]);
  server = started.child;
  info = started.listening as typeof info;
  // Every slot owned and announced: a stats call answers from both shards. Each `frontier`
  // call starts a process under tsx (seconds on a busy 2-core machine), so the wait is long.
  await until(async () => {
    const r = await cli(["status", "--json"]);
    if (r.code !== 0) return false;
    const { shards } = JSON.parse(r.stdout) as { shards: { answered: string[]; missing: unknown[] } };
    return shards.answered.length === 2 && shards.missing.length === 0;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  // Normally stopped by the last test; if not (a filtered run, a failure), stop it the same way:
  // a SIGKILL would leave its nats-server (in its own process group) behind.
  await started?.stop();
  const natsPid = typeof info?.natsServer === "object" ? info.natsServer.pid : undefined;
  if (natsPid !== undefined) {
    try {
      process.kill(natsPid, "SIGKILL");
    } catch {
      // Already gone, as it should be.
    }
  }
  await rm(dir, { recursive: true, force: true });
});

describe("frontier start", () => {
  it("started its own nats-server with JetStream under the data directory, and says where it listens", () => {
    expect(info.nats).toBe(natsUrl);
    expect(info.natsServer).not.toBe("external");
    expect((info.natsServer as { store: string }).store).toBe(join(dir, "data", "nats"));
    expect(info.credentials).toBe(credentials());
    expect(info.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  });

  it("says in one line how to install NATS when none runs and none is installed", async () => {
    const port = await freePort();
    const r = await frontier(["start", "--nats", `nats://127.0.0.1:${port}`, "--data", join(dir, "nonats")], {
      env: { NATS_SERVER_BIN: join(dir, "no-such-binary") },
    });
    expectOneLineFailure(r, 1, /apt-get install nats-server/);
  });
});

describe("client commands", () => {
  it("submit FILE, resubmit with the same key, status, lease, complete, fail, cancel", async () => {
    const file = join(dir, "tasks.jsonl");
    await writeFile(
      file,
      [
        '{"id":"fetch","deadline":"+1h","workflowId":"release"}',
        '{"id":"build","deadline":"+30m","workflowId":"release","prerequisites":["fetch"]}',
        "",
        '{"id":"notify","deadline":"+10m","payload":{"to":"ops"}}',
        '{"id":"cleanup","deadline":"+2h"}',
      ].join("\n"),
    );
    const first = await cli(["submit", file, "--idempotency-key", "walk-1"]);
    expect(first.stdout).toBe("submitted 4 tasks (idempotency key walk-1)\n");
    expect(first.code).toBe(0);
    const [again, status] = await Promise.all([
      cli(["submit", file, "--idempotency-key", "walk-1", "--json"]),
      cli(["status"]),
    ]);
    expect(JSON.parse(again.stdout)).toEqual({ accepted: 4, replayed: true, idempotencyKeys: ["walk-1"] });

    expect(status.stdout).toContain(`cluster "${CLUSTER}": 4 tasks`);
    expect(status.stdout).toContain("WAITING 1  RUNNABLE 3");

    // Earliest deadline first: notify (+10m), then fetch (+1h); build waits for fetch.
    const leased = await cli(["lease", "--max", "2", "--worker", "me", "--json"]);
    const leases = JSON.parse(leased.stdout) as {
      taskId: string;
      token: number;
      secret: string;
      task: { workflowId?: string };
    }[];
    expect(leases.map((l) => l.taskId)).toEqual(["notify", "fetch"]);
    const notify = leases[0]!;
    const fetch = leases[1]!;

    const [done, stale, failed] = await Promise.all([
      cli([
        "complete",
        "fetch",
        "--token",
        String(fetch.token),
        "--secret",
        fetch.secret,
        "--workflow",
        "release",
      ]),
      // The right secret under a wrong token: stale, as a wrong secret under the right token is.
      cli(["complete", "notify", "--token", String(notify.token + 1000), "--secret", notify.secret]),
      cli([
        "fail",
        "notify",
        "--token",
        String(notify.token),
        "--secret",
        notify.secret,
        "--no-retry",
        "--reason",
        "smtp down",
      ]),
    ]);
    expect(done.stdout).toBe("completed fetch\n");
    expectOneLineFailure(stale, 1, /STALE_LEASE/);
    expect(failed.stdout).toBe("failed notify for good\n");

    const [view, cancelled] = await Promise.all([
      cli(["status", "notify"]),
      cli(["cancel", "cleanup", "--reason", "not today"]),
    ]);
    expect(view.stdout).toMatch(/^task notify\n {2}state +FAILED\n/);
    expect(view.stdout).toMatch(/reason +failed \(not retryable\): smtp down/);
    expect(cancelled.stdout).toBe("cancelled cleanup\n");

    const build = JSON.parse((await cli(["status", "build", "--workflow", "release", "--json"])).stdout);
    expect(build).toMatchObject({ id: "build", state: "RUNNABLE", unmetPrerequisites: 0 });
  });

  it("release hands a lease back: leased again as the same attempt, the released token refused", async () => {
    await cli(["submit", "-"], JSON.stringify([{ id: "handed-back", deadline: 1, maxAttempts: 1 }]));
    const leaseOne = async (worker: string) =>
      (
        JSON.parse((await cli(["lease", "--worker", worker, "--json"])).stdout) as {
          taskId: string;
          token: number;
          secret: string;
          attempt: number;
        }[]
      )[0]!;
    const first = await leaseOne("a");
    expect(first.taskId).toBe("handed-back");
    const held = ["handed-back", "--token", String(first.token), "--secret", first.secret];
    const released = await cli(["release", ...held]);
    expect(released.stdout).toBe("released handed-back; it is runnable again, its attempt not spent\n");
    const again = await cli(["release", ...held, "--json"]);
    expect(JSON.parse(again.stdout)).toEqual({ taskId: "handed-back", duplicate: true });
    const second = await leaseOne("b");
    expect(second).toMatchObject({ taskId: "handed-back", attempt: 1 });
    expectOneLineFailure(await cli(["complete", ...held]), 1, /STALE_LEASE/);
    expect(
      (await cli(["complete", "handed-back", "--token", String(second.token), "--secret", second.secret]))
        .stdout,
    ).toBe("completed handed-back\n");
  });

  it("retries a failed task after the backoff `start --backoff-base-ms` set", async () => {
    await cli(["submit", "-"], JSON.stringify([{ id: "flaky-once", deadline: 1 }]));
    const [lease] = JSON.parse((await cli(["lease", "--json"])).stdout) as {
      taskId: string;
      token: number;
      secret: string;
    }[];
    expect(lease?.taskId).toBe("flaky-once");
    const before = Date.now();
    expect(
      (await cli(["fail", "flaky-once", "--token", String(lease!.token), "--secret", lease!.secret])).code,
    ).toBe(0);
    const view = JSON.parse((await cli(["status", "flaky-once", "--json"])).stdout);
    expect(view).toMatchObject({ state: "WAITING", attempts: 1 });
    // The default backoff's jitter is 20 %.
    expect(view.retryAt - before).toBeGreaterThan(BACKOFF_BASE_MS * 0.8 - 1_000);
    expect((await cli(["cancel", "flaky-once"])).code).toBe(0);
  });

  it("submit - reads a JSON array from stdin", async () => {
    const tasks = [
      { id: "stdin-a", deadline: 1_000 },
      { id: "stdin-b", deadline: 2_000 },
    ];
    const r = await cli(["submit", "-", "--json"], JSON.stringify(tasks));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ accepted: 2, replayed: false });
  });

  it("work -- CMD runs the command per task with the task on stdin, completes on exit 0, fails otherwise", async () => {
    const out = join(dir, "work-out");
    const script = [
      `mkdir -p ${out}`,
      `cat > ${out}/$FRONTIER_TASK_ID.json`,
      'if [ "$FRONTIER_TASK_ID" = "stdin-b" ]; then echo "disk full" >&2; exit 3; fi',
    ].join("; ");
    const r = await cli([
      "work",
      "--concurrency",
      "2",
      "--wait-ms",
      "1000",
      "--exit-when-idle",
      "--reason-from-stderr",
      "--json",
      "--",
      "sh",
      "-c",
      script,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; taskId: string; reason?: string; state?: string });
    const completed = events.filter((e) => e.event === "completed").map((e) => e.taskId);
    expect(completed.sort()).toEqual(["build", "stdin-a"]);
    const failed = events.filter((e) => e.event === "failed");
    expect(failed[0]).toMatchObject({ taskId: "stdin-b", state: "WAITING" });
    expect(failed[0]?.reason).toMatch(/exit code 3: disk full/);
    // The task arrived as JSON on stdin, with its id in the environment.
    expect((await readdir(out)).sort()).toContain("build.json");
    const task = JSON.parse(await readFile(join(out, "build.json"), "utf8"));
    expect(task).toMatchObject({ id: "build", workflowId: "release", prerequisites: ["fetch"] });
  });

  it("submits a batch big enough for the coordinator's validation threads (piscina under tsx)", async () => {
    const tasks = Array.from({ length: 1_000 }, (_, i) => ({
      id: `big-${i}`,
      deadline: 100_000 + i,
      workflowId: "big",
      prerequisites: i > 1 ? [`big-${i - 1}`, `big-${i - 2}`] : [],
    }));
    const file = join(dir, "big.json");
    await writeFile(file, JSON.stringify(tasks));
    const r = await cli(["submit", file]);
    expect(r.stdout, r.stderr).toMatch(/^submitted 1000 tasks/);
    const metrics = await (await fetch(info.metrics as string)).text();
    expect(metrics).toMatch(/frontier_coordinator_validations_total\{mode="pool"\} [1-9]/);
  });
});

describe("bad input and an unreachable cluster: one line, non-zero exit", () => {
  it("says how far a submit of several batches got when one fails, and how to resume it", async () => {
    // 1,500 tasks: two batches of at most 1,000. The second repeats an id of the first, so the
    // first is accepted and the second refused; the line names the command's key to resume with.
    const lines = Array.from({ length: 1_500 }, (_, i) =>
      JSON.stringify({ id: i === 1_200 ? "multi-7" : `multi-${i}`, deadline: "+1h", workflowId: "multi" }),
    );
    const file = join(dir, "multi.jsonl");
    await writeFile(file, `${lines.join("\n")}\n`);
    const first = await cli(["submit", file]);
    expectOneLineFailure(
      first,
      1,
      /batch 2 of 2 failed after 1000 tasks were accepted: .*DUPLICATE_ID.*--idempotency-key /,
    );
    const key = /--idempotency-key (\S+) to resume/.exec(first.stderr)?.[1];
    expect(key).toBeDefined();
    // The same command with that key: the first batch is answered from its key, nothing is doubled.
    const again = await cli(["submit", file, "--idempotency-key", key!]);
    expectOneLineFailure(again, 1, /batch 2 of 2 failed after 1000 tasks were accepted/);
    const status = JSON.parse((await cli(["status", "--json"])).stdout) as { counts: Record<string, number> };
    expect(Object.values(status.counts).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1_000);
    const view = JSON.parse((await cli(["status", "multi-999", "--workflow", "multi", "--json"])).stdout);
    expect(view.id ?? view.task?.id).toBe("multi-999");
  });

  it("names the line of a bad task, and sends nothing", async () => {
    const file = join(dir, "bad.jsonl");
    await writeFile(file, '{"id":"ok","deadline":1}\n{"id":"bad","deadline":"soon"}\n');
    const bad = await cli(["submit", file]);
    expectOneLineFailure(bad, 2, /bad\.jsonl:2: deadline "soon"/);
    const missing = await cli(["status", "ok"]);
    expectOneLineFailure(missing, 1, /no task "ok"/);
  });

  it("refuses a task id taken by a task of another workflow on the other shard, and finds the task by its id", async () => {
    // `--shards 2`: shard i owns the slots n with n mod 2 == i.
    const workflowOn = (shard: number, prefix: string) => {
      for (let i = 0; ; i++) {
        const w = `${prefix}-${i}`;
        if (slotOfTask({ id: "x", workflowId: w }) % 2 === shard) return w;
      }
    };
    const [first, second] = [workflowOn(0, "twin-a"), workflowOn(1, "twin-b")];
    const ok = await cli(
      ["submit", "-"],
      JSON.stringify([{ id: "twin-id", deadline: 1, workflowId: first }]),
    );
    expect(ok.code, ok.stderr).toBe(0);
    const dup = await cli(
      ["submit", "-"],
      JSON.stringify([
        { id: "twin-sibling", deadline: 1, workflowId: second },
        { id: "twin-id", deadline: 1, workflowId: second },
      ]),
    );
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/twin-id/);
    expect(dup.stderr).toMatch(/DUPLICATE_ID|taken in the cluster/);
    // Nothing of the refused batch was stored; the id names the first task, found by its id alone.
    expectOneLineFailure(await cli(["status", "twin-sibling"]), 1, /no task "twin-sibling"/);
    const view = JSON.parse((await cli(["status", "twin-id", "--json"])).stdout);
    expect(view.workflowId ?? view.task?.workflowId).toBe(first);
  });

  it("refuses bad options and arguments (the rest of the cases run in-process: packages/cli)", async () => {
    const results = await Promise.all([cli(["lease", "--frobnicate"]), frontier(["launch"])]);
    expectOneLineFailure(results[0]!, 2, /Unknown option '--frobnicate'/);
    expectOneLineFailure(results[1]!, 2, /unknown command "launch"/);
  });

  it("says so when NATS is not there, or no coordinator answers", async () => {
    const port = await freePort();
    const open = await startNatsServer();
    try {
      const [noNats, noCoordinator] = await Promise.all([
        frontier(["status", "--nats", `nats://127.0.0.1:${port}`]),
        frontier(["status", "--nats", open.url, "--cluster", "nobody-home"]),
      ]);
      expectOneLineFailure(noNats, 1, /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+/);
      expectOneLineFailure(noCoordinator, 1, /no coordinator answers for cluster "nobody-home"/);
    } finally {
      await open.stop();
    }
  });

  it("needs the credentials `start` made, and holds each command to its role", async () => {
    const [stranger, submitterCancels, adminCancels] = await Promise.all([
      frontier(["status", "--nats", natsUrl, "--cluster", CLUSTER]),
      cli(["cancel", "no-such-task", "--role", "submitter"]),
      cli(["cancel", "no-such-task", "--role", "admin"]),
    ]);
    expectOneLineFailure(stranger, 1, /Authorization Violation.*pass --credentials DIR/);
    expectOneLineFailure(
      submitterCancels,
      1,
      /does not let this connection publish to frontier\.clitest\.coord\.cancel.*--role admin/,
    );
    expectOneLineFailure(adminCancels, 1, /no task "no-such-task"|UNKNOWN_TASK/);
    const bad = await cli(["status", "--role", "shard"]);
    expectOneLineFailure(bad, 2, /--role must be one of coordinator, worker, submitter, admin/);
    // Schedules live in a bucket only admins may write: the refusal says so, in one line.
    const schedule = await cli([
      "schedule",
      "add",
      "s",
      "--every",
      "1m",
      "--deadline",
      "1m",
      "--role",
      "submitter",
    ]);
    expectOneLineFailure(schedule, 1, /schedules are the admin role's; connect as admin \(--role admin\)/);
  });

  it("prints help", async () => {
    const top = await frontier(["--help"]);
    expect(top.code).toBe(0);
    for (const name of [
      "start",
      "shard",
      "coordinator",
      "submit",
      "lease",
      "complete",
      "fail",
      "cancel",
      "status",
      "work",
    ]) {
      expect(top.stdout).toContain(`  ${name} `);
    }
  });
});

describe("frontier shard and frontier coordinator, as separate processes (as in docker-compose.yml)", () => {
  it("serve a cluster together with the keys `frontier credentials` made, and stop cleanly on SIGTERM", async () => {
    // As docker-compose.yml does: the keys first, NATS with their auth.conf, each service as its role.
    const keys = join(dir, "split", "credentials");
    const made = await frontier([
      "credentials",
      "--dir",
      keys,
      "--cluster",
      "split",
      "--shards",
      "shard-0,shard-1",
      "--json",
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ cluster: "split", authConfig: join(keys, "auth.conf") });
    const nats = await startNatsServer({ args: ["-c", join(keys, "auth.conf")] });
    const env = { FRONTIER_NATS_URL: nats.url, FRONTIER_CLUSTER: "split", FRONTIER_CREDENTIALS: keys };
    const run = (args: string[]) => {
      const child = spawn(
        process.execPath,
        ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", ...args],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let out = "";
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr?.on("data", (c: Buffer) => {
        out += c.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      return { child, exited, out: () => out };
    };
    const services = [
      run([
        "shard",
        "--id",
        "shard-0",
        "--slots",
        "0/2",
        "--data",
        join(dir, "split", "shard-0"),
        "--json",
        "--log-level",
        "warn",
      ]),
      run([
        "shard",
        "--id",
        "shard-1",
        "--slots",
        "1/2",
        "--data",
        join(dir, "split", "shard-1"),
        "--json",
        "--log-level",
        "warn",
      ]),
      run(["coordinator", "--json", "--log-level", "warn"]),
    ];
    try {
      await until(() => services.every((s) => s.out().includes('"event":"listening"')), 40_000);
      const shardLines = services.slice(0, 2).map((s) => JSON.parse(s.out().split("\n")[0] ?? "{}"));
      expect(shardLines.map((l) => l.slots)).toEqual([512, 512]);
      await until(async () => (await frontier(["status"], { env })).code === 0, 20_000);
      // A shard cannot start as another shard: its key admits it to its own subjects only.
      const impostor = await frontier(["shard", "--id", "shard-7", "--data", join(dir, "split", "x")], {
        env,
      });
      expect(impostor.code).not.toBe(0);
      expect(impostor.stderr).toMatch(/no seed for shard\.shard-7/);
      const submitted = await frontier(["submit", "-"], {
        env,
        input: '{"id":"a","deadline":1}\n{"id":"b","deadline":2}\n{"id":"c","deadline":3}\n',
      });
      expect(submitted.stdout).toMatch(/^submitted 3 tasks/);
      const leased = JSON.parse((await frontier(["lease", "--max", "3", "--json"], { env })).stdout);
      // Earliest first; one request may stop at a shard's bound (see the coordinator's lease routing).
      const ids = leased.map((l: { taskId: string }) => l.taskId);
      expect(ids[0]).toBe("a");
      expect(ids).toEqual([...ids].sort());
    } finally {
      for (const s of services) s.child.kill("SIGTERM");
      const codes = await Promise.all(services.map((s) => s.exited));
      await nats.stop();
      expect(codes).toEqual([0, 0, 0]);
    }
  });
});

describe("frontier start on a NATS server that wants credentials", () => {
  it("connects with the keys in its data directory, and otherwise says what to pass", async () => {
    // As after a `start` whose nats-server outlived it, or one a supervisor runs with start's auth.conf.
    const data = join(dir, "keyed");
    const made = await frontier([
      "credentials",
      "--dir",
      join(data, "credentials"),
      "--cluster",
      "keyed",
      "--shards",
      "shard-0",
    ]);
    expect(made.code, made.stderr).toBe(0);
    const nats = await startNatsServer({ args: ["-c", join(data, "credentials", "auth.conf")] });
    try {
      const keyless = await frontier(
        ["start", "--nats", nats.url, "--cluster", "keyed", "--data", join(dir, "keyless"), "--shards", "1"],
        {},
      );
      expectOneLineFailure(keyless, 2, /NATS server at .* wants credentials: pass --credentials DIR/);

      const keyed = await startFrontier([
        "--nats",
        nats.url,
        "--cluster",
        "keyed",
        "--data",
        data,
        "--shards",
        "1",
        "--metrics-port",
        "0",
        "--no-console",
      ]);
      try {
        expect(keyed.listening).toMatchObject({
          natsServer: "external",
          credentials: join(data, "credentials"),
        });
        const submitted = await frontier(
          [
            "submit",
            "-",
            "--nats",
            nats.url,
            "--cluster",
            "keyed",
            "--credentials",
            join(data, "credentials"),
          ],
          { input: '{"id":"a","deadline":1}\n' },
        );
        expect(submitted.stdout, submitted.stderr).toMatch(/^submitted 1 task/);
      } finally {
        await keyed.stop();
      }
    } finally {
      await nats.stop();
    }
  });
});

describe("stopping", () => {
  it("stops cleanly on SIGINT, and its nats-server with it", async () => {
    const natsPid = (info.natsServer as { pid: number }).pid;
    const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
    server.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(() => process.kill(natsPid, 0)).toThrow();
  });
});
