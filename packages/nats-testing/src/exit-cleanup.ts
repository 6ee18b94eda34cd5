/**
 * Reaps servers the test (or CLI) forgot, or could not, stop: a nats-server
 * left behind keeps its port and temp dir, and later runs trip over it.
 *
 * On `exit` we can only run synchronous code, so every tracked server offers a
 * synchronous `reapSync()` (SIGKILL + rmSync). On SIGINT/SIGTERM/SIGHUP we reap
 * and then re-raise the signal if nobody else listens for it, so installing
 * our handler does not change how the process dies. A parent killed with
 * SIGKILL cannot be helped here; its children stay in its process group, which
 * is what CI kills.
 */

export interface Reapable {
  reapSync(): void;
}

const live = new Set<Reapable>();
const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let exitHooked = false;
let signalsHooked = false;

/** Reap `r` when the process exits; the returned function stops tracking it. */
export function reapOnExit(r: Reapable): () => void {
  install();
  live.add(r);
  return () => {
    live.delete(r);
  };
}

function reapAll(): void {
  for (const r of live) {
    try {
      r.reapSync();
    } catch {
      // Best effort: one failure must not leave the others running.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  reapAll();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  signalsHooked = false;
  // Only re-raise when ours was the sole listener: then the default action
  // (terminate) is what would have happened without us.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", reapAll);
  }
  if (!signalsHooked) {
    signalsHooked = true;
    for (const s of SIGNALS) process.on(s, onSignal);
  }
}
