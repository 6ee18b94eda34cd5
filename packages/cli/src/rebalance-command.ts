/**
 * `frontier rebalance [--dry-run]` and `frontier shard drain ID`: slots
 * moved between live shards, one at a time, until every shard holds its
 * share (1024 / N ± 1), or until the drained shard holds none
 * (docs/cluster.md, "Slot movement"). Admin role: each move is a
 * `moveSlot` through a coordinator, made by the slot's shard.
 *
 * The shards: those the cluster's stats covered (slot owners that answer),
 * and the shards enrolled in the slot bucket (`shard.<id>`) that own no slot
 * yet (a shard just added). A move to a shard that is not there is refused
 * before anything is fenced (its shard has not heard it announce); that
 * shard is then left out and the rest planned again.
 */
import { type FrontierClient, shouldRetry } from "@frontier/client";
import { planRebalance, type SlotMovePlan } from "@frontier/cluster";
import { SLOT_COUNT, slotBucketName } from "@frontier/protocol";
import { natsConnectionOptions, SlotMap } from "@frontier/transport";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { flag, target } from "./args.js";
import { type CommandContext, withClient } from "./client-commands.js";
import { CliError, usageError } from "./errors.js";
import { println } from "./io.js";

/** How long the slot table may take to load, ms. */
const SLOT_TABLE_TIMEOUT_MS = 10_000;
const SHARD_KEY = /^shard\.([A-Za-z0-9_-]+)$/;

export function rebalance(ctx: CommandContext): Promise<void> {
  const extra = ctx.parsed.positionals;
  if (extra.length > 0) throw usageError(`rebalance: unexpected argument ${JSON.stringify(extra[0])}`);
  return evenOut(ctx, []);
}

/** `frontier shard drain ID`: every slot of shard ID to the other shards, evenly. */
export function drain(ctx: CommandContext, shardId: string | undefined): Promise<void> {
  if (shardId === undefined || !SHARD_KEY.test(`shard.${shardId}`))
    throw usageError("shard drain: expected the ID of the shard to drain");
  return evenOut(ctx, [shardId]);
}

async function evenOut(ctx: CommandContext, draining: readonly string[]): Promise<void> {
  const what = draining.length === 0 ? "rebalance" : "shard drain";
  const dryRun = flag(ctx.parsed, "dry-run");
  const json = flag(ctx.parsed, "json");
  const { natsUrl, cluster, access } = target(ctx.command, ctx.parsed, ctx.io);
  const nc = await connect({ ...natsConnectionOptions(natsUrl, access), timeout: 3_000 }).catch(
    (error: unknown) => {
      throw new CliError(`cannot reach NATS at ${natsUrl}: ${(error as Error).message}`, 1);
    },
  );
  const map = SlotMap.start(nc, { cluster });
  try {
    if (!(await map.whenLoaded(SLOT_TABLE_TIMEOUT_MS)))
      throw new CliError(`${what}: the slot table of cluster ${cluster} did not load`, 1);
    const enrolled = await enrolledShards(nc, cluster);
    await withClient(ctx, async (client) => {
      const stats = await client.stats();
      const owners = () => {
        const table = new Map<number, string>();
        for (let slot = 0; slot < SLOT_COUNT; slot++) {
          const owner = map.ownerOf(slot);
          if (owner !== undefined) table.set(slot, owner);
        }
        return table;
      };
      const owning = new Set(owners().values());
      const missing = new Set(stats.shards.missing.map((m) => m.shardId));
      let shards = [...new Set([...stats.shards.answered, ...enrolled.filter((s) => !owning.has(s))])]
        .filter((s) => !missing.has(s))
        .sort();
      for (const d of draining)
        if (!owning.has(d) && !shards.includes(d))
          throw new CliError(`${what}: shard ${d} owns no slot: nothing to drain`, 1);
      let plan = planRebalance(owners(), shards, { draining });
      if (dryRun) {
        for (const m of plan) report(ctx, json, m, undefined);
        summary(ctx, json, owners(), plan, shards, draining, true);
        return;
      }
      let moved = 0;
      while (plan.length > 0) {
        const m = plan[0]!;
        const outcome = await moveOne(client, m);
        if (outcome.kind === "absent") {
          // The target is not there: leave it out and plan again.
          shards = shards.filter((s) => s !== m.to);
          println(ctx.io.stderr, `${what}: shard ${m.to} does not answer; leaving it out (${outcome.why})`);
        } else {
          report(ctx, json, m, outcome.tasks);
          moved++;
        }
        await map.whenLoaded(SLOT_TABLE_TIMEOUT_MS);
        // Planned again after each move from the table as it is now: one move at a time, bounded work.
        const table = owners();
        if (table.get(m.slot) !== m.to && outcome.kind === "moved") table.set(m.slot, m.to);
        plan = planRebalance(table, shards, { draining });
      }
      summary(ctx, json, owners(), [], shards, draining, false, moved);
    });
  } finally {
    await map.close();
    await nc.close();
  }
}

type Outcome = { kind: "moved"; tasks: number } | { kind: "absent"; why: string };

async function moveOne(client: FrontierClient, m: SlotMovePlan): Promise<Outcome> {
  try {
    return { kind: "moved", ...(await client.moveSlot(m.slot, m.to)) };
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = (error as Error).message;
    if (code === "SHARD_UNAVAILABLE" && why.includes(`shard ${m.to} has not announced`))
      return { kind: "absent", why };
    if (shouldRetry(error))
      throw new CliError(`moving slot ${m.slot} from ${m.from} to ${m.to} did not end: ${why}; run again`, 1);
    throw error;
  }
}

function report(ctx: CommandContext, json: boolean, m: SlotMovePlan, tasks: number | undefined): void {
  if (json) println(ctx.io.stdout, JSON.stringify({ ...m, ...(tasks === undefined ? {} : { tasks }) }));
  else
    println(
      ctx.io.stdout,
      tasks === undefined
        ? `would move slot ${m.slot} from ${m.from} to ${m.to}`
        : `moved slot ${m.slot} from ${m.from} to ${m.to} (${tasks} task${tasks === 1 ? "" : "s"})`,
    );
}

function summary(
  ctx: CommandContext,
  json: boolean,
  owners: Map<number, string>,
  plan: readonly SlotMovePlan[],
  shards: readonly string[],
  draining: readonly string[],
  dryRun: boolean,
  moved = 0,
): void {
  const held = new Map<string, number>();
  for (const s of shards) held.set(s, 0);
  for (const d of draining) held.set(d, 0);
  for (const [slot, owner] of owners) {
    const after = plan.find((m) => m.slot === slot)?.to ?? owner;
    held.set(after, (held.get(after) ?? 0) + 1);
  }
  const counts = [...held].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  if (json) {
    println(
      ctx.io.stdout,
      JSON.stringify({ moves: dryRun ? plan.length : moved, slots: Object.fromEntries(counts) }),
    );
    return;
  }
  const line = counts.map(([s, n]) => `${s} ${n}`).join(", ");
  println(
    ctx.io.stdout,
    dryRun
      ? `${plan.length} move${plan.length === 1 ? "" : "s"} would leave: ${line}`
      : `${moved} slot${moved === 1 ? "" : "s"} moved; slots held: ${line}`,
  );
}

/** The shard ids enrolled in the cluster's slot bucket (`shard.<id>`: each data directory's shard). */
async function enrolledShards(nc: Parameters<typeof SlotMap.start>[0], cluster: string): Promise<string[]> {
  const kv = await new Kvm(nc).open(slotBucketName(cluster));
  const shards: string[] = [];
  for await (const key of await kv.keys("shard.*")) {
    const m = SHARD_KEY.exec(key);
    if (m) shards.push(m[1]!);
  }
  return shards;
}
