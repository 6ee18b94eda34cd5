import { configDefaults, defineConfig } from "vitest/config";

// Tests import sibling packages by name; the "source" export condition
// points them at src/, so no build is needed before `pnpm test`.
const conditions = ["source", "import", "node", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    // The fault-injection run over a real cluster (test/chaos/chaos.test.ts)
    // spawns a dozen processes and times leases of a few seconds: it runs on
    // its own, after the rest (`pnpm test` runs both; FRONTIER_CHAOS selects it).
    exclude: process.env["FRONTIER_CHAOS"]
      ? configDefaults.exclude
      : [...configDefaults.exclude, "test/chaos/chaos.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
