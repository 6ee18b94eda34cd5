/**
 * Inline validation vs the thread pool, per batch size: where the hop to a
 * worker starts to pay (INLINE_VALIDATION_MAX_WORK). The inline check is the
 * baseline; the pool's figure is the latency a submit sees, most of which is
 * spent off the event loop. Run: npx vitest bench --run packages/coordinator
 */
import type { TaskInput } from "@frontier/core";
import { pino } from "pino";
import { afterAll, bench, describe } from "vitest";
import { checkSubmitBatch } from "./batch-check.js";
import { BatchValidator } from "./validation.js";

const pool = new BatchValidator({
  poolSize: 2,
  inlineMaxWork: 0,
  workerUrl: undefined,
  logger: pino({ level: "silent" }),
});
afterAll(() => pool.close());

function chain(n: number): TaskInput[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${i}`,
    deadline: i,
    workflowId: "w",
    prerequisites: i === 0 ? [] : [`t${i - 1}`],
    payload: { i },
  }));
}

for (const n of [100, 250, 1_000]) {
  const batch = chain(n);
  describe(`${n} chained tasks (work ${2 * n - 1})`, () => {
    bench("inline", () => {
      checkSubmitBatch(batch);
    });
    bench("pool", async () => {
      await pool.check(batch);
    });
  });
}
