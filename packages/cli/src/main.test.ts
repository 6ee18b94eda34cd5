/**
 * The CLI in-process: parsing, help, and every bad-input path, which must
 * end in one line on stderr and a non-zero exit; and `status` against a
 * stand-in coordinator on a real nats-server, for replies a real cluster
 * gives only under faults. (The end-to-end tests in test/e2e run it as a
 * user does, against a real cluster.)
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { Scheduler } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { encodeReply, type ShardCoverage, subjectsFor } from "@frontier/protocol";
import { connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkNatsUrl } from "./args.js";
import { COMMANDS, commandHelp, globalHelp, type Io, main, parseTasks } from "./index.js";
import { deadlineOf } from "./tasks-file.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-cli-unit-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  argv: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; userCwd?: string } = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const out = new PassThrough();
  const err = new PassThrough();
  out.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  err.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const io: Io = {
    stdout: out,
    stderr: err,
    stdin: Readable.from([Buffer.from(options.input ?? "")]),
    env: options.env ?? {},
    cwd: dir,
    ...(options.userCwd === undefined ? {} : { userCwd: options.userCwd }),
    onSignal: () => () => {},
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

function oneLine(r: Run, code: number, mentions: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(mentions);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("help", () => {
  it("lists every command, and each command's options", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${globalHelp()}\n`);
    for (const name of Object.keys(COMMANDS)) expect(r.stdout).toContain(`  ${name} `);
    const sub = await run(["fail", "--help"]);
    expect(sub.stdout).toBe(`${commandHelp("fail")}\n`);
    expect(sub.stdout).toContain("--no-retry");
    expect(sub.stdout).toContain("--json");
    expect((await run(["help", "work"])).stdout).toContain("Usage: frontier work");
  });

  it("says its version, and the protocol version it speaks", async () => {
    for (const flag of ["--version", "-V", "version"]) {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^frontier \d+\.\d+\.\d+ \(protocol \d+\)\n$/);
    }
  });

  it("prints help on stderr and exits 2 without a command", async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Usage: frontier COMMAND");
  });
});

describe("bad usage: one line on stderr, exit 2", () => {
  const cases: [string[], RegExp][] = [
    [["launch"], /^frontier: unknown command "launch"/],
    [["lease", "--frobnicate"], /^frontier lease: Unknown option '--frobnicate'.*frontier lease --help/],
    [["lease", "--max", "0"], /--max must be an integer in 1\.\.1000, got "0"/],
    [["lease", "--max", "2.5"], /--max must be an integer/],
    [["lease", "--wait-ms", "999999"], /--wait-ms must be an integer in 0\.\.30000/],
    [["lease", "extra"], /unexpected argument "extra"/],
    [["coordinator", "--max-long-polls", "0"], /--max-long-polls must be an integer/],
    [["start", "--max-prepared-bytes", "0"], /--max-prepared-bytes must be an integer/],
    [["start", "--max-live-tasks", "0"], /--max-live-tasks must be an integer/],
    [["shard", "--max-stored-bytes", "1.5"], /--max-stored-bytes must be an integer/],
    [["shard", "--max-idempotency-keys", "many"], /--max-idempotency-keys must be an integer/],
    [
      ["status", "--nats-password-file", "/no/such/file"],
      /cannot read --nats-password-file "\/no\/such\/file" \(ENOENT\)/,
    ],
    [["status", "--nats-user", "u", "--nats-token-file", "/dev/null"], /one kind of credentials/],
    [["complete", "t1"], /--token T is required/],
    [["complete", "t1", "--token", "3"], /--secret S is required/],
    [["complete", "--token", "3"], /expected one task ID/],
    [["complete", "t1", "--token", "abc"], /--token must be an integer/],
    [["release", "t1"], /--token T is required/],
    [["release", "t1", "--token", "3"], /--secret S is required/],
    [["release", "--token", "3", "--secret", "s"], /expected one task ID/],
    [["release", "t1", "--token", "x1", "--secret", "s"], /--token must be an integer/],
    [
      ["fail", "t1", "--token", "1", "--secret", "s", "--reason", "x".repeat(1025)],
      /--reason must be at most 1024/,
    ],
    [["status", "a", "b"], /at most one task ID/],
    [["status", "--cluster", "no.dots"], /--cluster must be 1\.\.64 characters/],
    [["status", "--nats", "::::"], /--nats must be a URL/],
    [["submit"], /expected one FILE, or - for stdin/],
    [["submit", "--idempotency-key", "", "-"], /--idempotency-key must be/],
    [["work"], /expected a command to run/],
    [["work", "--concurrency", "0", "--", "true"], /--concurrency must be an integer in 1\.\.1000/],
    [["start", "--shards", "0"], /--shards must be an integer in 1\.\.256/],
    [["start", "--backoff-base-ms", "0"], /--backoff-base-ms must be an integer ≥ 1/],
    [["start", "--max-runnable-wait-ms", "0"], /--max-runnable-wait-ms must be an integer ≥ 1/],
    [["shard", "--max-runnable-wait-ms", "soon"], /--max-runnable-wait-ms must be an integer ≥ 1/],
    [["start", "--durability", "fsync"], /--durability must be one of flushed, committed, got "fsync"/],
    [["shard", "--durability", ""], /--durability must be one of flushed, committed/],
    [["start", "--order-window=-1"], /--order-window must be an integer in 0\.\.100000 or "shard", got "-1"/],
    [["shard", "--order-window", "global"], /--order-window must be an integer in 0\.\.100000 or "shard"/],
    [["start", "--order-window", "100001"], /--order-window must be an integer in 0\.\.100000 or "shard"/],
    [
      ["shard", "--backoff-base-ms", "5000", "--backoff-max-ms", "1000"],
      /--backoff-base-ms \(5000\) must not exceed --backoff-max-ms \(1000\)/,
    ],
    [["start", "--log-level", "chatty"], /--log-level must be one of/],
    [["shard", "--id", "a.b"], /--id must be 1\.\.64 characters/],
    [["shard", "--slots", "some"], /--slots must be "auto"/],
    [["shard", "--kv-replicas", "0"], /--kv-replicas must be an integer in 1\.\.5, got "0"/],
    [["start", "--kv-replicas", "6"], /--kv-replicas must be an integer in 1\.\.5, got "6"/],
    [["coordinator", "--metrics-port", "70000"], /--metrics-port must be an integer in 0\.\.65535/],
    [["work", "--metrics-port", "70000", "--", "true"], /--metrics-port must be an integer in 0\.\.65535/],
    [["shard", "--no-metrics", "--metrics-port", "9466"], /--no-metrics turns the endpoint off/],
    [["start", "--no-metrics", "--metrics-host", "0.0.0.0"], /--no-metrics turns the endpoint off/],
  ];
  for (const [argv, mentions] of cases) {
    it(`frontier ${argv.join(" ").slice(0, 60)}`, async () => {
      oneLine(await run(argv), 2, mentions);
    });
  }
});

describe("submit input", () => {
  it("names the line of a bad task, before anything is sent", async () => {
    const file = join(dir, "bad.jsonl");
    await writeFile(file, '{"id":"a","deadline":1}\n\n{"id":"b","deadline":1,"maxAtempts":2}\n');
    // Unreachable NATS: had it tried to send, the error would be about NATS.
    oneLine(
      await run(["submit", file, "--nats", "nats://127.0.0.1:1"]),
      2,
      /bad\.jsonl:3: BAD_MESSAGE: unknown field "maxAtempts"/,
    );
    oneLine(
      await run(["submit", "-"], { input: '[{"id":"a","deadline":1},{"id":7,"deadline":1}]' }),
      2,
      /stdin\[1\]: BAD_MESSAGE: id/,
    );
    oneLine(await run(["submit", "-"], { input: "{not json" }), 2, /stdin:1: not valid JSON/);
    oneLine(await run(["submit", "-"], { input: "   \n" }), 2, /no tasks in stdin/);
    oneLine(await run(["submit", "-"], { input: "[1,2]" }), 2, /stdin\[0\]: a task must be a JSON object/);
    oneLine(
      await run(["submit", join(dir, "missing.jsonl")]),
      2,
      /cannot read .*missing\.jsonl: no such file/,
    );
    oneLine(await run(["submit", dir]), 2, /is a directory/);
  });

  it("names every bad line, the first 20 in full and how many more, and sends nothing", async () => {
    const file = join(dir, "many-bad.jsonl");
    const lines = [
      '{"id":"ok","deadline":1}',
      "{not json",
      '{"id":"late","deadline":"soon"}',
      '{"id":"typo","deadline":1,"maxAtempts":2}',
      "[1]",
    ];
    await writeFile(file, `${lines.join("\n")}\n`);
    const r = await run(["submit", file, "--nats", "nats://127.0.0.1:1"]);
    oneLine(r, 2, /4 bad tasks in .*many-bad\.jsonl, nothing sent: /);
    for (const n of [2, 3, 4, 5]) expect(r.stderr).toContain(`many-bad.jsonl:${n}: `);
    expect(r.stderr).not.toContain("many-bad.jsonl:1:");
    expect(r.stderr).toMatch(
      /:2: not valid JSON.*:3: deadline "soon".*:4: BAD_MESSAGE: unknown field "maxAtempts".*:5: a task must be a JSON object/,
    );

    const many = Array.from({ length: 25 }, (_, i) => `{"id":"t${i}","deadline":"never"}`).join("\n");
    const capped = await run(["submit", "-"], { input: many });
    oneLine(
      capped,
      2,
      /^frontier submit: 25 bad tasks in stdin, nothing sent: stdin:1: .*stdin:20: deadline "never"[^;]*; and 5 more$/,
    );
    expect(capped.stderr).not.toContain("stdin:21:");
  });

  it("reads FILE where the user is (FRONTIER_USER_CWD, set by `pnpm frontier`), not where the process runs", async () => {
    const elsewhere = join(dir, "user-dir");
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, "mine.jsonl"), '{"id":"x","deadline":"whenever"}\n');
    // Read from user-dir: its bad deadline is what fails, not a missing file.
    oneLine(
      await run(["submit", "mine.jsonl"], { userCwd: elsewhere }),
      2,
      /mine\.jsonl:1: deadline "whenever"/,
    );
    oneLine(await run(["submit", "mine.jsonl"]), 2, /cannot read mine\.jsonl: no such file/);
    // --credentials . is the user's directory too (it holds no keys: the error names it).
    const credentials = await run(["status", "--credentials", "."], { userCwd: elsewhere });
    oneLine(credentials, 2, /the credentials directory ".*user-dir" holds no seed for submitter/);
  });

  it("reads JSON lines, a JSON array, or one pretty-printed object; converts readable deadlines", () => {
    const now = 1_700_000_000_000;
    expect(parseTasks('{"id":"a","deadline":1}\n{"id":"b","deadline":"+2m"}\n', "f", now)).toEqual([
      { task: { id: "a", deadline: 1 }, where: "f:1" },
      { task: { id: "b", deadline: now + 120_000 }, where: "f:2" },
    ]);
    expect(parseTasks('[{"id":"a","deadline":"2030-01-01T00:00:00Z"}]', "f", now)[0]?.task["deadline"]).toBe(
      Date.parse("2030-01-01T00:00:00Z"),
    );
    expect(parseTasks('{\n  "id": "a",\n  "deadline": 5\n}\n', "f", now)).toEqual([
      { task: { id: "a", deadline: 5 }, where: "f" },
    ]);
    expect(deadlineOf("+1.5h", "x", 0)).toBe(5_400_000);
    expect(deadlineOf(42, "x", 0)).toBe(42);
    expect(() => deadlineOf("tomorrow", "f:1", 0)).toThrow(/f:1: deadline "tomorrow" is not a number/);
  });

  it("reads a delayed start (notBefore) as it reads deadlines, and names it when it is not a time", () => {
    const now = 1_700_000_000_000;
    expect(parseTasks('{"id":"a","deadline":"+10m","notBefore":"+5m","timeoutMs":60000}', "f", now)).toEqual([
      {
        task: { id: "a", deadline: now + 600_000, notBefore: now + 300_000, timeoutMs: 60_000 },
        where: "f:1",
      },
    ]);
    expect(() => parseTasks('{"id":"a","deadline":1,"notBefore":"soon"}', "f", now)).toThrow(
      /f:1: notBefore "soon" is not a number, an ISO date, or \+N/,
    );
  });
});

describe("status usage", () => {
  it("refuses --workflow without a task ID rather than show the cluster's counters as the workflow's", async () => {
    oneLine(
      await run(["status", "--workflow", "release-42", "--nats", "nats://127.0.0.1:1"]),
      2,
      /^frontier status: --workflow W needs a task ID/,
    );
  });
});

describe("an unreachable cluster: one line, exit 1", () => {
  it("says where it looked for NATS", async () => {
    oneLine(
      await run(["status", "--nats", "nats://127.0.0.1:1"]),
      1,
      /cannot reach NATS at nats:\/\/127\.0\.0\.1:1/,
    );
    oneLine(
      await run(["lease"], { env: { FRONTIER_NATS_URL: "nats://127.0.0.1:1" } }),
      1,
      /^frontier lease: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/,
    );
  });

  it("never repeats a password or token from the URL", async () => {
    const withPassword = await run(["status", "--nats", "nats://app:hunter2@127.0.0.1:1"]);
    oneLine(withPassword, 1, /cannot reach NATS at nats:\/\/app:\*\*\*@127\.0\.0\.1:1/);
    const withToken = await run(["status", "--nats", "nats://s3cr3t-token@127.0.0.1:1"]);
    oneLine(withToken, 1, /cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:1/);
    const badUrl = await run(["status", "--nats", "nats://app:hunter2@"]);
    for (const r of [withPassword, withToken, badUrl])
      expect(r.stdout + r.stderr).not.toMatch(/hunter2|s3cr3t/);
  });
});

describe("status of a cluster where some shards did not answer", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  afterAll(() => server?.stop());

  /** Runs `frontier status ARGS` against a coordinator whose stats reply claims `shards`. */
  async function statusWith(shards: ShardCoverage, args: string[] = []): Promise<Run> {
    const cluster = "partial";
    const nc = await natsConnect({ servers: server.url });
    const engine = new Scheduler();
    engine.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
    ]);
    nc.subscribe(subjectsFor(cluster).coord("stats"), {
      callback: (_err, msg) => {
        msg.respond(encodeReply({ ok: true, op: "stats", stats: engine.stats(), shards }));
      },
    });
    await nc.flush();
    try {
      return await run(["status", "--nats", server.url, "--cluster", cluster, ...args]);
    } finally {
      await nc.close();
    }
  }

  const partial: ShardCoverage = {
    answered: ["shard-0", "shard-2"],
    missing: [{ shardId: "shard-1", code: "TIMEOUT" }],
  };

  it("prints a partial line naming the shard and its code, and exits 0", async () => {
    const r = await statusWith(partial);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe('cluster "partial": 2 tasks on 2 of 3 shards');
    expect(lines[1]).toBe("  partial: shard-1 did not answer (TIMEOUT); its tasks are not counted");
  });

  it("prints no partial line when every shard answered", async () => {
    const r = await statusWith({ answered: ["shard-0", "shard-1"], missing: [] });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe('cluster "partial": 2 tasks on 2 shards');
    expect(r.stdout).not.toMatch(/partial:/);
  });

  it("includes the shards in --json", async () => {
    const r = await statusWith(partial, ["--json"]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.shards).toEqual(partial);
    expect(json.counts.RUNNABLE).toBe(2);
  });
});

describe("checkNatsUrl", () => {
  it("reads host and port, with the defaults NATS uses", () => {
    expect(checkNatsUrl("x", "nats://127.0.0.1:4333")).toEqual({ host: "127.0.0.1", port: 4333 });
    expect(checkNatsUrl("x", "localhost")).toEqual({ host: "localhost", port: 4222 });
    expect(checkNatsUrl("x", "nats://a:1,nats://b:2")).toEqual({ host: "a", port: 1 });
  });
});
