// `pnpm frontier …` (and `pnpm start`): the CLI from packages/cli/dist when
// the build of every package is newer than its sources (about 0.4 s to
// start), else from the sources under tsx (about 2 s; no build needed). So
// `pnpm build` (or `pnpm typecheck`, which builds too) makes it fast, and
// what runs is never older than the sources: an edit falls back to the
// sources until the next build. FRONTIER_FROM_SOURCES=1 always runs the
// sources.
//
// pnpm runs a script in the repository root and sets INIT_CWD to where the
// user ran pnpm; paths they typed are relative to that directory. It goes to
// the CLI as FRONTIER_USER_CWD (packages/cli/src/io.ts); the CLI's own
// defaults (.frontier) stay in the root, where `pnpm start` keeps them.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { constants } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);
const env = { ...process.env };
if (env.INIT_CWD !== undefined && env.INIT_CWD !== "") env.FRONTIER_USER_CWD = env.INIT_CWD;

if (env.FRONTIER_FROM_SOURCES !== "1" && distIsCurrent()) {
  // In this process: bin.js reads process.argv.slice(2), which are the same arguments.
  if (env.FRONTIER_USER_CWD !== undefined) process.env.FRONTIER_USER_CWD = env.FRONTIER_USER_CWD;
  await import(pathToFileURL(join(root, "packages/cli/dist/bin.js")).href);
} else {
  fromSources();
}

/**
 * True when every project of the root tsconfig.json has a build record
 * (tsconfig.tsbuildinfo, rewritten by every `tsc -b` that looked at a
 * changed input) no older than its sources and tsconfig.json, and the
 * shared tsconfig.base.json. (package.json is no input of tsc's: dist is
 * found through it as it is now.) Tests and benches are not built, so
 * they do not count. A few hundred stat calls: milliseconds.
 */
function distIsCurrent() {
  try {
    if (!existsSync(join(root, "packages/cli/dist/bin.js"))) return false;
    const projects = JSON.parse(readFileSync(join(root, "tsconfig.json"), "utf8")).references.map((r) =>
      join(root, r.path),
    );
    const base = statSync(join(root, "tsconfig.base.json")).mtimeMs;
    for (const dir of projects) {
      const built = statSync(join(dir, "tsconfig.tsbuildinfo")).mtimeMs;
      if (base > built) return false;
      if (statSync(join(dir, "tsconfig.json")).mtimeMs > built) return false;
      if (newestSource(join(dir, "src")) > built) return false;
    }
    return true;
  } catch {
    return false; // something missing: no build, or a partial one
  }
}

function newestSource(dir) {
  let newest = statSync(dir).mtimeMs; // a deleted or renamed file changes its directory
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|mts|json)$/.test(entry.name) && !/\.(test|bench)\.ts$/.test(entry.name)) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * The CLI under tsx, in a child process: the "source" export condition must
 * be a Node flag, and worker threads (the shard host's) take it from there.
 * A terminal's Ctrl-C reaches the whole foreground process group, the child
 * included, so this process ignores SIGINT rather than send a second one
 * (which `work` and `start` read as "terminate now"). SIGTERM and SIGHUP,
 * sent to this process alone by whoever started it, are passed on.
 */
function fromSources() {
  const child = spawn(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      import.meta.resolve("tsx"),
      join(root, "packages/cli/src/bin.ts"),
      ...args,
    ],
    { stdio: "inherit", env },
  );
  process.on("SIGINT", () => {});
  for (const signal of ["SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.once("error", (error) => {
    process.stderr.write(`frontier: cannot start node: ${error.message}\n`);
    process.exitCode = 1;
  });
  child.once("exit", (code, signal) => {
    process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
  });
}
