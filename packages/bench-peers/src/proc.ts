/**
 * Processes of the benchmark: spawning servers in their own process groups,
 * free ports, waiting for a port, CPU time read from /proc, and one registry
 * of everything to undo on exit (children, temporary directories, databases),
 * run on a normal end, on an error and on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of this machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Cleanup registry

type AsyncCleanup = () => Promise<void>;

const groups = new Set<number>();
const dirs = new Set<string>();
const asyncCleanups: AsyncCleanup[] = [];

/** Registers a process group (a child spawned `detached`) to kill on exit. */
export function trackGroup(pgid: number): void {
  groups.add(pgid);
}

export function untrackGroup(pgid: number): void {
  groups.delete(pgid);
}

function killGroups(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  groups.clear();
}

/** Kills every registered process group and removes every registered directory, synchronously (last resort on exit). */
export function cleanupSync(): void {
  killGroups();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/**
 * Kills what is still running (servers, worker processes: after a normal
 * end nothing is), then runs the registered async cleanups (dropping
 * databases), newest first, bounded by `capMs`, then removes the directories.
 */
export async function cleanupAll(capMs = 20_000): Promise<void> {
  killGroups();
  const run = (async () => {
    while (asyncCleanups.length > 0) {
      const c = asyncCleanups.pop()!;
      try {
        await c();
      } catch (err) {
        console.error(`bench-peers: cleanup failed: ${(err as Error).message}`);
      }
    }
  })();
  await Promise.race([run, sleep(capMs)]);
  cleanupSync();
}

/** Registers an async cleanup; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(c: AsyncCleanup): () => Promise<void> {
  asyncCleanups.push(c);
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    const i = asyncCleanups.indexOf(c);
    if (i >= 0) asyncCleanups.splice(i, 1);
    await c();
  };
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `frontier-peers-${prefix}-`));
  dirs.add(path);
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true });
      dirs.delete(path);
    },
  };
}

// ---------------------------------------------------------------------------
// Servers

export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** SIGTERM to the group, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns a long-running process in its own process group (so it and its
 * children can be killed together), output to `logFile`.
 */
export function spawnServer(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; logFile: string; env?: NodeJS.ProcessEnv },
): Server {
  const fd = openSync(options.logFile, "a");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  groups.add(pid);
  let exited = false;
  const exitP = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (graceMs = 10_000) => {
    if (!exited) {
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        // gone
      }
      await Promise.race([exitP, sleep(graceMs)]);
    }
    try {
      process.kill(-pid, "SIGKILL"); // whatever is left of the group
    } catch {
      // gone
    }
    groups.delete(pid);
    await Promise.race([exitP, sleep(2_000)]);
  };
  return { name, child, pid, stop };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Waits until something accepts connections on the port, or throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, server?: Server): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (server !== undefined && server.child.exitCode !== null) {
      throw new Error(`${server.name} exited (code ${server.child.exitCode}) before listening on ${port}`);
    }
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Calls `probe` until it resolves truthy, or throws its last error after `timeoutMs`. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  pauseMs = 100,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    await sleep(pauseMs);
  }
  throw new Error(
    `${what}: not ready after ${timeoutMs} ms${last === undefined ? "" : ` (${(last as Error).message})`}`,
  );
}

// ---------------------------------------------------------------------------
// CPU time from /proc

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime + cutime + cstime, in ticks. */
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const comm = text.slice(open + 1, close);
  const f = text
    .slice(close + 2)
    .trim()
    .split(" ");
  // f[0] is field 3 (state): field n is f[n - 3].
  const ppid = Number(f[1]);
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { pid, ppid, comm, ticks };
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const s = readStat(Number(name));
    if (s !== null) out.push(s);
  }
  return out;
}

/** CPU ticks per pid of the given processes and all their descendants. */
export type CpuSample = Map<number, number>;

export function sampleTree(roots: readonly number[]): CpuSample {
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list === undefined) children.set(s.ppid, [s.pid]);
    else list.push(s.pid);
  }
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  const out: CpuSample = new Map();
  const todo = [...roots];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (out.has(pid)) continue;
    const s = byPid.get(pid);
    if (s === undefined) continue;
    out.set(pid, s.ticks);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU ticks per pid of every process whose name is `comm` (e.g. all `postgres` processes). */
export function sampleByName(comm: string): CpuSample {
  const out: CpuSample = new Map();
  for (const s of allStats()) if (s.comm === comm) out.set(s.pid, s.ticks);
  return out;
}

/** CPU microseconds spent between two samples by the processes alive at the second (new ones from 0). */
export function cpuDeltaUs(before: CpuSample, after: CpuSample): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return (ticks * 1_000_000) / CLK_TCK;
}
