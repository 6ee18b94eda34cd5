/**
 * `frontier credentials`: make (or complete) a cluster's credentials
 * directory for a deployment whose NATS server Frontier does not start —
 * several hosts, or docker-compose.yml. It writes one nkey seed per role and
 * per shard id, and auth.conf for the server (`nats-server -c auth.conf`,
 * or `include` it). Seeds already there are kept; run it again with more
 * shard ids to add shards, then reload the server (`nats-server --signal
 * reload`). Hand each host only the seed files of what it runs.
 */
import { isValidToken } from "@frontier/protocol";
import { clusterPrincipals, ensureCredentials, NatsAccessError, seedFileOf } from "@frontier/transport";
import { type OptionSpecs, str, target } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { usageError } from "./errors.js";
import { println, userPath } from "./io.js";

export const CREDENTIALS_OPTIONS = {
  dir: {
    type: "string",
    value: "DIR",
    description: "the credentials directory to make or complete (required)",
  },
  shards: {
    type: "string",
    value: "IDS",
    description:
      "shard ids, comma-separated (a seed each); for `frontier start --shards N`: shard-0 … shard-<N-1>",
  },
} as const satisfies OptionSpecs;

export async function credentials(ctx: CommandContext): Promise<void> {
  if (ctx.parsed.positionals.length > 0) {
    throw usageError(`credentials: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  }
  const { cluster } = target(ctx.command, ctx.parsed, ctx.io);
  const given = str(ctx.parsed, "dir");
  if (given === undefined) throw usageError("credentials: --dir DIR is required");
  const raw = str(ctx.parsed, "shards") ?? "";
  const shardIds = raw === "" ? [] : raw.split(",").map((id) => id.trim());
  const bad = shardIds.find((id) => !isValidToken(id));
  if (bad !== undefined) {
    throw usageError(
      `credentials: shard ids must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(bad)}`,
    );
  }
  if (new Set(shardIds).size !== shardIds.length)
    throw usageError("credentials: --shards names a shard twice");
  const dir = userPath(ctx.io, given);
  let made: ReturnType<typeof ensureCredentials>;
  try {
    made = ensureCredentials(dir, cluster, clusterPrincipals(shardIds));
  } catch (error) {
    if (error instanceof NatsAccessError) throw usageError(`credentials: ${error.message}`);
    throw error;
  }
  const files = made.users.map((u) => ({
    principal: u.principal.role === "shard" ? `shard ${u.principal.shardId}` : u.principal.role,
    seedFile: seedFileOf(dir, u.principal),
    created: made.created.includes(u.principal),
  }));
  if (ctx.parsed.values["json"] === true) {
    println(
      ctx.io.stdout,
      JSON.stringify({ cluster, dir, authConfig: made.authConfigFile, principals: files }),
    );
    return;
  }
  println(
    ctx.io.stdout,
    `frontier: credentials of cluster ${JSON.stringify(cluster)} in ${dir} (${made.created.length} new, ${files.length - made.created.length} kept)`,
    ...files.map((f) => `  ${f.principal.padEnd(16)} ${f.seedFile}${f.created ? "  (new)" : ""}`),
    `frontier: start NATS with \`nats-server -c ${made.authConfigFile}\` (or include it), reload it after adding shards;`,
    "frontier: give each process --credentials DIR, a directory holding its own seed file (same layout)",
  );
}
