/**
 * The console's front end for the tests: built by Vite as `pnpm build` and
 * scripts/setup.sh build it, into the directory given (the package's
 * dist/web when none is).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./harness.js";

const CONSOLE_DIR = join(REPO_ROOT, "packages", "console");

export async function buildConsoleWeb(outDir?: string): Promise<void> {
  await promisify(execFile)(
    join(CONSOLE_DIR, "node_modules", ".bin", "vite"),
    ["build", "--logLevel", "warn", ...(outDir === undefined ? [] : ["--outDir", outDir])],
    { cwd: CONSOLE_DIR },
  );
}
