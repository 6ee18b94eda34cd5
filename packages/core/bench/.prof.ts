import { Scheduler, type TaskInput } from "../src/index.js";
const shape = process.argv[2] ?? "independent";
const n = Number(process.argv[3] ?? 100000);
const batches: TaskInput[][] = [];
let b: TaskInput[] = [];
for (let i = 0; i < n; i++) {
  const t: TaskInput = { id: `t${i}`, deadline: Math.floor(Math.random() * 1e9) };
  if (shape === "dag" && i > 3) t.prerequisites = [...new Set([0,1,2].map(() => `t${Math.floor(Math.random() * i)}`))];
  if (shape === "chains" && i % 1000) t.prerequisites = [`t${i-1}`];
  b.push(t); if (b.length === 1000) { batches.push(b); b = []; }
}
for (let rep = 0; rep < 4; rep++) {
  const s = new Scheduler({ now: () => 0 });
  const t0 = performance.now();
  for (const x of batches) s.addTasks(x);
  const t1 = performance.now();
  for (let t = s.consumeTask(); t; t = s.consumeTask()) s.completeTask(t.id);
  const t2 = performance.now();
  console.log(`add ${(t1 - t0).toFixed(0)} ms, consume+complete ${(t2 - t1).toFixed(0)} ms`);
}
