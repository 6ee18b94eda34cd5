import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const entry = new URL("./index.ts", import.meta.url).href;

/** True while `pid` runs; a zombie (dead, not yet reaped) counts as dead. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Runs a Node process that starts a server and prints its pid and store; once
 * the server is seen alive, that process ends the way `how` says. Resolves
 * once it is gone.
 */
async function orphanCheck(how: "exit" | "uncaught" | "SIGTERM" | "SIGINT") {
  const script = `
    const { startNatsServer } = await import(${JSON.stringify(entry)});
    const s = await startNatsServer();
    console.log(JSON.stringify({ pid: s.pid, storeDir: s.storeDir }));
    const how = ${JSON.stringify(how)};
    process.stdin.once("data", () => {
      if (how === "exit") process.exit(0);
      if (how === "uncaught") throw new Error("boom");
    });
  `;
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "--input-type=module", "-e", script],
    {
      cwd: repoRoot,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    void exited.then(() => reject(new Error(`child exited early: ${err}`)));
  });
  const server = JSON.parse(line) as { pid: number; storeDir: string };
  expect(isAlive(server.pid)).toBe(true);
  if (how === "SIGTERM" || how === "SIGINT") child.kill(how);
  else child.stdin.write("go\n");
  await exited;
  return server;
}

describe("exit cleanup", () => {
  for (const how of ["exit", "uncaught", "SIGTERM", "SIGINT"] as const) {
    it(`kills the server and removes its store when the process ends by ${how}`, async () => {
      const server = await orphanCheck(how);
      await expect.poll(() => isAlive(server.pid), { timeout: 5_000 }).toBe(false);
      expect(existsSync(server.storeDir)).toBe(false);
    });
  }
});
