/**
 * What a process that does not answer is doing, read from outside it: for
 * a member that did not start in time, the harness prints this with its
 * output. A process silent for a minute is either busy (CPU time grows),
 * waiting on the network (its main thread in epoll_wait), or blocked on a
 * lock (its main thread in a futex wait, as a deadlocked module loader
 * is), and the threads, their kernel wait channels and a native stack tell
 * those apart. Linux only (/proc); where something cannot be read it says
 * so instead of failing: this runs on a failure path.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux of this kind. */
const TICKS_PER_SECOND = 100;
/** How long gdb may take to print the threads' stacks, ms. */
const GDB_TIMEOUT_MS = 15_000;

/**
 * A few lines on what process `pid` is doing now; with `nativeStacks`, each
 * thread's top frames too (for a node process: whether its main thread
 * waits in the event loop's epoll or on a lock).
 */
export function describeProcess(pid: number, { nativeStacks = true } = {}): string {
  const lines: string[] = [`process ${pid}:`];
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return `process ${pid}: gone (no /proc entry)`;
  const fields = statFields(stat);
  const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  lines.push(`  state ${fields[0]}, CPU ${cpuMs} ms (user + system), threads ${fields[17]}`);
  for (const tid of list(`/proc/${pid}/task`)) {
    const comm = read(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? "?";
    const state = statFields(read(`/proc/${pid}/task/${tid}/stat`) ?? "")[0] ?? "?";
    const wchan = read(`/proc/${pid}/task/${tid}/wchan`)?.trim() || "-";
    lines.push(`  thread ${tid} ${comm}: ${state}, waits in ${wchan}`);
  }
  lines.push(`  open: ${describeFds(pid)}`);
  const stack = nativeStacks ? gdbStacks(pid) : undefined;
  if (stack !== undefined) lines.push("  native stacks (gdb):", ...stack.map((l) => `    ${l}`));
  return lines.join("\n");
}

/** The fields of a /proc stat line after "(comm)", which may hold spaces: [0] is the state. */
function statFields(stat: string): string[] {
  return stat
    .slice(stat.lastIndexOf(")") + 2)
    .trim()
    .split(" ");
}

function describeFds(pid: number): string {
  const kinds = new Map<string, number>();
  for (const fd of list(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const kind = /^(socket|pipe|anon_inode):/.exec(target)?.[1] ?? "file";
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${n} ${k}`).join(", ") || "nothing readable";
}

/** Every thread's native stack, when gdb is installed (the top frames of each). */
function gdbStacks(pid: number): string[] | undefined {
  try {
    const out = execFileSync("gdb", ["-p", String(pid), "-batch", "-nx", "-ex", "thread apply all bt 8"], {
      timeout: GDB_TIMEOUT_MS,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out
      .split("\n")
      .filter((l) => /^(Thread |#)/.test(l))
      .map((l) => l.slice(0, 200));
  } catch {
    return undefined;
  }
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function list(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
