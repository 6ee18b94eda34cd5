// `pnpm test [vitest args]`: the suite, then — when no args narrow it — the
// chaos run over a real cluster (test/chaos/chaos.test.ts), on its own so
// its few-second leases do not share two cores with the rest of the suite.
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);

function vitest(extra, env = process.env) {
  const run = spawnSync("vitest", ["run", ...extra], { stdio: "inherit", env, shell: false });
  if (run.error) throw run.error;
  return run.status ?? 1;
}

const status = vitest(args);
if (status !== 0 || args.length > 0) process.exit(status);
process.exit(vitest(["test/chaos/chaos.test.ts"], { ...process.env, FRONTIER_CHAOS: "1" }));
