/**
 * Who owns a data directory, and whether that owner is still alive.
 *
 * The owner record lives inside the LMDB environment (the head row) and is
 * read and replaced in one write transaction, which LMDB serializes across
 * processes: two openers cannot both see "free" and both take it, as they
 * could with a lock file created in two steps.
 *
 * Liveness is judged from the record: a different boot of this machine, or
 * no process with that pid, or a pid now used by a process that started at
 * another time (pid reuse), means the owner is dead. A record from another
 * host cannot be checked and counts as alive. An alive-looking owner can be
 * overridden only by an explicit takeover, which the epoch then fences.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

export interface OwnerRecord {
  readonly pid: number;
  readonly host: string;
  /** Linux boot id, when available: a different one means the machine rebooted. */
  readonly bootId?: string;
  /** Process start time in clock ticks since boot (Linux /proc), to tell a reused pid. */
  readonly startTicks?: string;
  /** Wall clock when the owner opened the directory. */
  readonly openedAt: number;
}

export type Liveness = "alive" | "dead" | "unknown";

export function currentOwner(): OwnerRecord {
  const owner: { -readonly [K in keyof OwnerRecord]: OwnerRecord[K] } = {
    pid: process.pid,
    host: hostname(),
    openedAt: Date.now(),
  };
  const bootId = readBootId();
  if (bootId !== undefined) owner.bootId = bootId;
  const startTicks = readStartTicks(process.pid);
  if (startTicks !== undefined) owner.startTicks = startTicks;
  return owner;
}

/** Whether the process an owner record names still runs. "unknown" for another host. */
export function liveness(owner: OwnerRecord): Liveness {
  if (owner.host !== hostname()) return "unknown";
  const bootId = readBootId();
  if (owner.bootId !== undefined && bootId !== undefined && owner.bootId !== bootId) return "dead";
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return "dead";
  }
  if (owner.startTicks !== undefined) {
    const ticks = readStartTicks(owner.pid);
    if (ticks !== undefined && ticks !== owner.startTicks) return "dead";
  }
  return "alive";
}

function readBootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces, so count from the last ')'. */
function readStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}
