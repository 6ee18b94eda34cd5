import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { describeProcess } from "./process-state.js";

/** A node process that says "ready" on stdout, then runs `then`. */
async function nodeThat(then: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ["-e", `process.stdout.write("ready\\n"); ${then}`], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  await once(proc.stdout!, "data");
  return proc;
}

/** The line of the main thread (its tid is the pid). */
function mainThreadLine(pid: number, text: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`  thread ${pid} `));
}

describe.runIf(process.platform === "linux")("describeProcess", () => {
  const procs: ChildProcess[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill("SIGKILL");
  });

  it("tells a main thread blocked on a lock from one idle in its event loop", async () => {
    const blocked = await nodeThat("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);");
    const idle = await nodeThat("setInterval(() => {}, 60_000);");
    procs.push(blocked, idle);
    // Let both reach their wait.
    await new Promise((r) => setTimeout(r, 200));
    const b = describeProcess(blocked.pid!, { nativeStacks: false });
    const i = describeProcess(idle.pid!, { nativeStacks: false });
    expect(b).toMatch(/^process \d+:\n {2}state S, CPU \d+ ms \(user \+ system\), threads \d+/);
    expect(mainThreadLine(blocked.pid!, b)).toMatch(/: S, waits in .*futex/);
    expect(mainThreadLine(idle.pid!, i)).toMatch(/: S, waits in .*epoll/);
    expect(i).toMatch(/open: .*pipe/);
  });

  it("says a process that is gone is gone", async () => {
    const p = await nodeThat("process.exit(0);");
    await once(p, "exit");
    expect(describeProcess(p.pid!)).toBe(`process ${p.pid}: gone (no /proc entry)`);
  });
});
