/**
 * The commands that run the service: `start` (all in one process, with a
 * NATS child when none answers), `shard` and `coordinator` (each alone, for
 * several hosts). Each prints where it listens and runs until SIGINT /
 * SIGTERM, then stops cleanly: coordinator first (no new requests), then the
 * shards (their journals flushed), then the NATS child. A second signal
 * exits at once.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import {
  hostShardId,
  MAX_ORDER_WINDOW,
  runShardProcess,
  runStandbyProcess,
  type ShardActorTuning,
  ShardHost,
  type SlotSpec,
  shardProcessOptionsFromEnv,
} from "@frontier/cluster";
import { startCoordinator } from "@frontier/coordinator";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "@frontier/core";
import { processRegistry, renderMetrics } from "@frontier/metrics";
import { ID_SPACES, isIdSpace, isValidToken, redactUrl } from "@frontier/protocol";
import { AUTH_CONFIG_FILE, accessOf, clusterPrincipals, ensureCredentials } from "@frontier/transport";
import pino, { type Logger } from "pino";
import { checkNatsUrl, flag, IMPLICIT_CREDENTIALS_DIR, int, str, target } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { consoleFlagsOf, consoleRole, serveConsole } from "./console-serve.js";
import { CliError, usageError } from "./errors.js";
import { println, userPath } from "./io.js";
import { metricsFlagsOf, prefixed, serveMetricsIfOn } from "./metrics/serve.js";
import { INSTALL_NATS_HINT, type NatsChild, natsAnswer, startNatsChild } from "./nats-child.js";
import {
  DEFAULT_DATA_DIR,
  DEFAULT_START_SHARDS,
  DURABILITIES,
  type Durability,
  LOG_LEVELS,
  type LogLevel,
  MAX_KV_REPLICAS,
} from "./service-options.js";

/** Something `run` stops on a signal, in order. */
interface Stoppable {
  readonly name: string;
  close(): Promise<void>;
}

// ------------------------------------------------------------------- start

export async function start(ctx: CommandContext): Promise<void> {
  noPositionals(ctx);
  const { natsUrl, cluster, access, credentialsDir } = target(ctx.command, ctx.parsed, ctx.io);
  const givenData = str(ctx.parsed, "data");
  const dataDir =
    givenData === undefined ? resolve(ctx.io.cwd, DEFAULT_DATA_DIR) : userPath(ctx.io, givenData);
  const shards = int(ctx.command, ctx.parsed, "shards", { min: 1, max: 256 }, DEFAULT_START_SHARDS);
  const firstShard = int(ctx.command, ctx.parsed, "first-shard", { min: 0, max: 1_000_000 }, 0);
  const join = flag(ctx.parsed, "join");
  const engine = engineOptionsOf(ctx);
  const metricsFlags = metricsFlagsOf(ctx, "start");
  const consoleFlags = consoleFlagsOf(ctx);
  const logLevel = logLevelOf(ctx, "warn");
  const maxLongPolls = int(ctx.command, ctx.parsed, "max-long-polls", { min: 1 });
  const prepared = shardLimitsOf(ctx);
  const kvReplicas = kvReplicasOf(ctx);
  const json = flag(ctx.parsed, "json");
  const openNats = flag(ctx.parsed, "open-nats");
  if (openNats && credentialsDir !== undefined) {
    throw usageError("start: --open-nats starts NATS without credentials; drop --credentials");
  }

  const parts: Stoppable[] = [];
  return runUntilSignal(ctx, parts, async () => {
    let url = natsUrl;
    let child: NatsChild | null = null;
    // With credentials, each part connects as itself (docs/security.md); without, all share `access`.
    let credentials = credentialsDir;
    const answer = await natsAnswer(natsUrl, access);
    if (answer === "refused" && credentials === undefined && !openNats) {
      // A NATS that wants keys, most likely the one an earlier `start` on this data made (still
      // running, or run by a supervisor with its auth.conf): connect with those keys, else say so.
      const made = resolve(dataDir, "credentials");
      if (!existsSync(resolve(made, AUTH_CONFIG_FILE))) {
        throw usageError(
          `start: the NATS server at ${redactUrl(natsUrl)} wants credentials: pass --credentials DIR (the directory its auth.conf was made in), or stop it and start runs its own`,
        );
      }
      credentials = made;
    }
    if (answer === "absent") {
      const { host, port } = checkNatsUrl(ctx.command, natsUrl);
      if (!openNats) {
        credentials ??= resolve(dataDir, "credentials");
        const ids = Array.from({ length: shards }, (_, i) => hostShardId(firstShard + i));
        ensureCredentials(credentials, cluster, clusterPrincipals(ids));
      }
      child = await startNatsChild(host, port, resolve(dataDir, "nats"), natsUrl, {
        ...(credentials === undefined ? {} : { configFile: resolve(credentials, AUTH_CONFIG_FILE) }),
      });
      url = child.url;
      parts.push({ name: "nats-server", close: () => (child as NatsChild).stop() });
    }
    const tls = access.tls === undefined ? {} : { tls: access.tls };
    const host = await ShardHost.start({
      natsUrl: url,
      ...(credentials === undefined
        ? { natsAccess: access }
        : { natsAccess: tls, credentialsDir: credentials }),
      cluster,
      dataDir: resolve(dataDir, "shards"),
      shards,
      firstShard,
      join,
      logLevel,
      ...engine,
      ...prepared,
      ...autoRebalanceOf(ctx),
      ...idSpaceOf(ctx),
      ...orderWindowOf(ctx),
      ...kvReplicas,
      ...(flag(ctx.parsed, "replicate") ? { replicate: true } : {}),
    });
    parts.unshift({ name: "shards", close: () => host.close() });
    const coord = await startCoordinator({
      natsUrl: url,
      natsAccess:
        credentials === undefined
          ? access
          : { ...tls, ...accessOf(credentials, cluster, { role: "coordinator" }) },
      cluster,
      logger: logger("frontier-coordinator", logLevel),
      ...(maxLongPolls === undefined ? {} : { maxLongPolls }),
    });
    parts.unshift({ name: "coordinator", close: () => coord.close() });
    // One endpoint for the process: its own metrics, the coordinator's, the host's and every shard thread's.
    const endpoint = await serveMetricsIfOn(ctx, metricsFlags, {
      render: async () =>
        renderMetrics([processRegistry(), coord.metrics, host.metrics], await host.workerMetrics()),
      checks: () => ({ ...prefixed("coordinator", coord.readiness()), ...host.readiness() }),
    });
    if (endpoint !== undefined) parts.push({ name: "metrics", close: () => endpoint.close() });
    // The console calls the cluster as the admin role (its own key, when start made the credentials).
    const webConsole =
      consoleFlags === null
        ? undefined
        : await serveConsole(ctx, consoleFlags, {
            natsUrl: url,
            cluster,
            access:
              credentials === undefined
                ? access
                : { ...tls, ...accessOf(credentials, cluster, { role: "admin" }) },
            role: consoleRole(credentials === undefined ? undefined : "admin", access),
          });
    if (webConsole !== undefined) parts.unshift({ name: "console", close: () => webConsole.close() });

    const info = {
      event: "listening",
      cluster,
      nats: redactUrl(url),
      natsServer: child === null ? "external" : { pid: child.pid, store: child.storeDir },
      credentials: credentials ?? null,
      shards,
      dataDir,
      metrics: endpoint?.url ?? null,
      console: webConsole?.server.url ?? null,
    };
    if (json) println(ctx.io.stdout, JSON.stringify(info));
    else {
      println(
        ctx.io.stdout,
        child === null
          ? `frontier: using the NATS server at ${redactUrl(url)}`
          : `frontier: started nats-server (pid ${child.pid}) on ${redactUrl(url)}, JetStream store in ${child.storeDir}`,
        `frontier: cluster ${JSON.stringify(cluster)} listening on ${redactUrl(url)}: coordinator + ${shards} shard${shards === 1 ? "" : "s"}, data in ${dataDir}`,
      );
      if (credentials !== undefined) {
        println(
          ctx.io.stdout,
          `frontier: NATS admits each role with its own key, in ${credentials}; clients connect with --credentials ${credentials}${
            credentials === resolve(ctx.io.cwd, IMPLICIT_CREDENTIALS_DIR)
              ? " (found without the flag from this directory)"
              : ""
          }`,
        );
      } else if (child !== null) {
        println(ctx.io.stdout, "frontier: NATS admits anyone who reaches it (--open-nats)");
      }
      if (endpoint !== undefined) println(ctx.io.stdout, `frontier: metrics on ${endpoint.url}`);
      if (webConsole !== undefined) println(ctx.io.stdout, `frontier: console on ${webConsole.server.url}`);
      println(ctx.io.stdout, "frontier: press Ctrl-C to stop");
    }
    return undefined;
  });
}

// ------------------------------------------------------------------- shard

export async function shard(ctx: CommandContext): Promise<void> {
  noPositionals(ctx);
  const { natsUrl, cluster, access } = target(ctx.command, ctx.parsed, ctx.io);
  // Flags first, then FRONTIER_SHARD_ID / FRONTIER_DATA_DIR / FRONTIER_SLOTS (for containers), then defaults.
  const fromEnv = shardProcessOptionsFromEnv(ctx.io.env);
  const shardId = str(ctx.parsed, "id") ?? fromEnv.shardId ?? "shard-0";
  if (!isValidToken(shardId)) {
    throw usageError(
      `shard: --id must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(shardId)}`,
    );
  }
  const givenData = str(ctx.parsed, "data") ?? fromEnv.dataDir;
  const dataDir =
    givenData === undefined
      ? resolve(ctx.io.cwd, `${DEFAULT_DATA_DIR}/${shardId}`)
      : userPath(ctx.io, givenData);
  const slots = slotSpecOf(ctx, typeof fromEnv.slots === "string" ? fromEnv.slots : undefined);
  const logLevel = logLevelOf(ctx, fromEnv.logLevel ?? "info");
  const { shard: engine } = engineOptionsOf(ctx);
  const prepared = shardLimitsOf(ctx);
  const takeover = flag(ctx.parsed, "takeover");
  const standby = flag(ctx.parsed, "standby");
  const replicate = standby || flag(ctx.parsed, "replicate");
  const failoverAfterMs = int(ctx.command, ctx.parsed, "failover-after", { min: 1, max: 86_400_000 });
  if (failoverAfterMs !== undefined && !standby)
    throw usageError("shard: --failover-after goes with --standby");
  if (standby && takeover) throw usageError("shard: --standby and --takeover do not go together");
  const metricsFlags = metricsFlagsOf(ctx, "shard");
  const kvReplicas = kvReplicasOf(ctx);
  const parts: Stoppable[] = [];
  return runUntilSignal(ctx, parts, async () => {
    if (standby) {
      // Follow the primary's stream until it is silent, then take its id over (docs/cluster.md, "Standby shards").
      const stop = new AbortController();
      parts.push({ name: "standby", close: async () => stop.abort() });
      line(
        ctx,
        { event: "standby", role: "shard", cluster, shardId, dataDir },
        `frontier: standby of shard ${shardId} of cluster ${JSON.stringify(cluster)}, following its journal stream into ${dataDir}`,
      );
      const taken = await runStandbyProcess({
        natsUrl: natsUrl.split(","),
        natsAccess: access,
        cluster,
        shardId,
        dataDir,
        log: logger("frontier-shard", logLevel).child({ cluster, shardId, standby: true }),
        signal: stop.signal,
        ...kvReplicas,
        ...(failoverAfterMs === undefined ? {} : { failoverAfterMs }),
      });
      parts.pop();
      line(
        ctx,
        { event: "takeover", role: "shard", cluster, shardId, dataDir, markerSeq: taken.markerSeq },
        `frontier: took shard ${shardId} over (the old primary is fenced); opening it from ${dataDir}`,
      );
    }
    const proc = await runShardProcess({
      natsUrl: natsUrl.split(","),
      natsAccess: access,
      cluster,
      shardId,
      dataDir,
      slots,
      logLevel,
      waitForNats: true,
      handleSignals: false,
      exit: () => {},
      ...prepared,
      ...autoRebalanceOf(ctx),
      ...idSpaceOf(ctx),
      ...orderWindowOf(ctx),
      ...kvReplicas,
      ...(replicate ? { replicate } : {}),
      ...(takeover || engine !== undefined
        ? { shard: { ...engine, ...(takeover ? { takeover } : {}) } }
        : {}),
    });
    parts.push({ name: "shard", close: () => proc.stop().then(() => undefined) });
    const endpoint = await serveMetricsIfOn(ctx, metricsFlags, {
      render: async () => renderMetrics([processRegistry()], [await proc.actor.metricsJson()]),
      checks: () => proc.actor.readiness(),
    });
    if (endpoint !== undefined) parts.push({ name: "metrics", close: () => endpoint.close() });
    const owned = proc.actor.ownedSlots().length;
    line(
      ctx,
      {
        event: "listening",
        role: "shard",
        cluster,
        shardId,
        nats: redactUrl(natsUrl),
        dataDir,
        slots: owned,
        metrics: endpoint?.url ?? null,
      },
      `frontier: shard ${shardId} of cluster ${JSON.stringify(cluster)} serving ${owned} slots on ${redactUrl(natsUrl)}, data in ${dataDir}${endpoint === undefined ? "" : `, metrics on ${endpoint.url}`}`,
    );
    return {
      ended: proc.exited.then((code) => {
        if (code !== 0) throw new CliError(`shard ${shardId} failed; restart it on the same data directory`);
      }),
    };
  });
}

/**
 * The shards' limits from --max-prepared-parts, --max-prepared-bytes,
 * --max-live-tasks, --max-stored-bytes and --max-idempotency-keys (library
 * defaults when absent).
 */
function shardLimitsOf(
  ctx: CommandContext,
): Pick<
  ShardActorTuning,
  "maxPreparedParts" | "maxPreparedBytes" | "maxLiveTasks" | "maxStoredBytes" | "maxIdempotencyKeys"
> {
  const flags = {
    maxPreparedParts: "max-prepared-parts",
    maxPreparedBytes: "max-prepared-bytes",
    maxLiveTasks: "max-live-tasks",
    maxStoredBytes: "max-stored-bytes",
    maxIdempotencyKeys: "max-idempotency-keys",
  } as const;
  const limits: Record<string, number> = {};
  for (const [option, flagName] of Object.entries(flags)) {
    const value = int(ctx.command, ctx.parsed, flagName, { min: 1 });
    if (value !== undefined) limits[option] = value;
  }
  return limits;
}

/** Automatic rebalancing from --auto-rebalance (every AUTO_REBALANCE_MS); off when absent. */
function autoRebalanceOf(ctx: CommandContext): Pick<ShardActorTuning, "autoRebalanceMs"> {
  return flag(ctx.parsed, "auto-rebalance") ? { autoRebalanceMs: AUTO_REBALANCE_MS } : {};
}

/** The streams' replicas from --kv-replicas (absent: the default, 1). */
function kvReplicasOf(ctx: CommandContext): { kvReplicas?: number } {
  const kvReplicas = int(ctx.command, ctx.parsed, "kv-replicas", { min: 1, max: MAX_KV_REPLICAS });
  return kvReplicas === undefined ? {} : { kvReplicas };
}

/** The order window from --order-window (absent: 0, exact order across shards). */
function orderWindowOf(ctx: CommandContext): Pick<ShardActorTuning, "orderWindow"> {
  const raw = str(ctx.parsed, "order-window")?.trim();
  if (raw === undefined) return {};
  if (raw === "shard") return { orderWindow: "shard" };
  const orderWindow = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(orderWindow) || orderWindow > MAX_ORDER_WINDOW)
    throw usageError(
      `${ctx.command}: --order-window must be an integer in 0..${MAX_ORDER_WINDOW} or "shard", got ${JSON.stringify(raw)}`,
    );
  return { orderWindow };
}

/** The id space from --id-space (absent: the default, "cluster"). */
function idSpaceOf(ctx: CommandContext): Pick<ShardActorTuning, "idSpace"> {
  const idSpace = str(ctx.parsed, "id-space");
  if (idSpace === undefined) return {};
  if (!isIdSpace(idSpace))
    throw usageError(
      `${ctx.command}: --id-space must be one of ${ID_SPACES.join(", ")}, got ${JSON.stringify(idSpace)}`,
    );
  return { idSpace };
}

/** How often a shard started with --auto-rebalance looks at the slots' balance, ms. */
const AUTO_REBALANCE_MS = 5_000;

/** The shard options the flags set: retry backoff, the starvation guard, forward references, durability. */
function engineOptionsOf(ctx: CommandContext): {
  shard?: {
    backoff?: BackoffPolicy;
    maxRunnableWaitMs?: number;
    allowForwardReferences?: boolean;
    durability?: Durability;
  };
} {
  const maxRunnableWaitMs = int(ctx.command, ctx.parsed, "max-runnable-wait-ms", { min: 1 });
  const forward = flag(ctx.parsed, "forward-references");
  const durability = str(ctx.parsed, "durability");
  if (durability !== undefined && !(DURABILITIES as readonly string[]).includes(durability))
    throw usageError(
      `${ctx.command}: --durability must be one of ${DURABILITIES.join(", ")}, got ${JSON.stringify(durability)}`,
    );
  const others = {
    ...(maxRunnableWaitMs === undefined ? {} : { maxRunnableWaitMs }),
    ...(forward ? { allowForwardReferences: true } : {}),
    ...(durability === undefined ? {} : { durability: durability as Durability }),
  };
  const backoff = backoffOf(ctx);
  const shard = { ...(backoff === undefined ? {} : { backoff }), ...others };
  return Object.keys(shard).length === 0 ? {} : { shard };
}

function backoffOf(ctx: CommandContext): BackoffPolicy | undefined {
  const baseMs = int(ctx.command, ctx.parsed, "backoff-base-ms", { min: 1 });
  const maxMs = int(ctx.command, ctx.parsed, "backoff-max-ms", { min: 1 });
  if (baseMs === undefined && maxMs === undefined) return undefined;
  const backoff = {
    ...DEFAULT_BACKOFF,
    baseMs: baseMs ?? Math.min(DEFAULT_BACKOFF.baseMs, maxMs ?? DEFAULT_BACKOFF.baseMs),
    maxMs: maxMs ?? Math.max(DEFAULT_BACKOFF.maxMs, baseMs ?? 0),
  };
  if (backoff.baseMs > backoff.maxMs) {
    throw usageError(
      `${ctx.command}: --backoff-base-ms (${backoff.baseMs}) must not exceed --backoff-max-ms (${backoff.maxMs})`,
    );
  }
  return backoff;
}

// ------------------------------------------------------------- coordinator

export async function coordinator(ctx: CommandContext): Promise<void> {
  noPositionals(ctx);
  const { natsUrl, cluster, access } = target(ctx.command, ctx.parsed, ctx.io);
  const metricsFlags = metricsFlagsOf(ctx, "coordinator");
  const logLevel = logLevelOf(ctx, "info");
  const maxLongPolls = int(ctx.command, ctx.parsed, "max-long-polls", { min: 1 });
  const parts: Stoppable[] = [];
  return runUntilSignal(ctx, parts, async () => {
    const coord = await startCoordinator({
      natsUrl,
      natsAccess: access,
      cluster,
      // Like `frontier shard`: a supervised process may start before NATS.
      waitForNats: true,
      logger: logger("frontier-coordinator", logLevel),
      ...(maxLongPolls === undefined ? {} : { maxLongPolls }),
    });
    parts.push({ name: "coordinator", close: () => coord.close() });
    const endpoint = await serveMetricsIfOn(ctx, metricsFlags, {
      render: () => renderMetrics([processRegistry(), coord.metrics]),
      checks: () => coord.readiness(),
    });
    if (endpoint !== undefined) parts.push({ name: "metrics", close: () => endpoint.close() });
    line(
      ctx,
      {
        event: "listening",
        role: "coordinator",
        cluster,
        nats: redactUrl(natsUrl),
        metrics: endpoint?.url ?? null,
      },
      `frontier: coordinator of cluster ${JSON.stringify(cluster)} listening on ${redactUrl(natsUrl)}${endpoint === undefined ? "" : `, metrics on ${endpoint.url}`}`,
    );
    return undefined;
  });
}

// ----------------------------------------------------------------- helpers

/**
 * Start the parts (`boot` pushes what it started onto `parts`, first to stop
 * first, and may return a promise of its own end), then wait for a signal or
 * that end, and stop the parts in order. If boot fails, or a signal comes
 * while it runs, what it started is stopped too.
 */
async function runUntilSignal(
  ctx: CommandContext,
  parts: Stoppable[],
  boot: () => Promise<{ ended?: Promise<void> } | undefined>,
): Promise<void> {
  let signalled: (signal: NodeJS.Signals) => void = () => {};
  const stopSignal = new Promise<NodeJS.Signals>((r) => {
    signalled = r;
  });
  let signals = 0;
  const off = ctx.io.onSignal((signal) => {
    signals++;
    if (signals === 1) signalled(signal);
    else {
      println(ctx.io.stderr, `frontier ${ctx.command}: second ${signal}, exiting now`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
  });
  try {
    const booting = boot();
    const first = await Promise.race([
      booting.then(
        (r) => ({ kind: "booted" as const, ended: r?.ended }),
        (error: unknown) => ({ kind: "failed" as const, error }),
      ),
      stopSignal.then((signal) => ({ kind: "signal" as const, signal })),
    ]);
    if (first.kind === "failed") {
      await stopAll(ctx, parts);
      throw startError(first.error);
    }
    let reason: string;
    let endError: unknown = null;
    if (first.kind === "signal") {
      await booting.catch(() => {});
      reason = first.signal;
    } else {
      const ended = first.ended?.then(
        () => "ended",
        (error: unknown) => {
          endError = error;
          return "ended";
        },
      );
      reason = await Promise.race([stopSignal, ...(ended === undefined ? [] : [ended])]);
    }
    if (!flag(ctx.parsed, "json") && endError === null) {
      println(
        ctx.io.stderr,
        `frontier ${ctx.command}: ${reason === "ended" ? "stopped" : `${reason}, stopping`}`,
      );
    }
    await stopAll(ctx, parts);
    if (endError !== null) throw endError;
  } finally {
    off();
  }
}

async function stopAll(ctx: CommandContext, parts: readonly Stoppable[]): Promise<void> {
  for (const part of parts) {
    try {
      await part.close();
    } catch (err) {
      println(
        ctx.io.stderr,
        `frontier ${ctx.command}: stopping ${part.name}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

/** A start failure as one line; the NATS hint when it comes down to NATS not being there. */
function startError(err: unknown): unknown {
  if (err instanceof CliError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/jetstream is not enabled|jetstream not enabled/i.test(message)) {
    return new CliError(`${message}: the NATS server needs JetStream (nats-server -js)`, 1, { cause: err });
  }
  if (/ECONNREFUSED|CONNECTION_REFUSED|connection refused/i.test(message)) {
    return new CliError(`cannot reach NATS: ${message}; ${INSTALL_NATS_HINT}`, 1, { cause: err });
  }
  return err;
}

function line(ctx: CommandContext, json: Record<string, unknown>, human: string): void {
  println(ctx.io.stdout, flag(ctx.parsed, "json") ? JSON.stringify(json) : human);
}

function noPositionals(ctx: CommandContext): void {
  if (ctx.parsed.positionals.length > 0) {
    throw usageError(`${ctx.command}: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  }
}

function logLevelOf(ctx: CommandContext, fallback: string): LogLevel {
  const level = str(ctx.parsed, "log-level") ?? fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw usageError(
      `${ctx.command}: --log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`,
    );
  }
  return level as LogLevel;
}

function logger(name: string, level: LogLevel): Logger {
  return pino({ name, level });
}

function slotSpecOf(ctx: CommandContext, fallback: string | undefined): SlotSpec {
  const raw = str(ctx.parsed, "slots") ?? fallback;
  if (raw === undefined || raw === "auto") return "auto";
  const spread = /^(\d+)\/(\d+)$/.exec(raw.trim());
  if (spread !== null) return { index: Number(spread[1]), of: Number(spread[2]) };
  if (!/^[\d\s,-]+$/.test(raw)) {
    throw usageError(
      `${ctx.command}: --slots must be "auto", ranges like "0-511,700", or "I/N", got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}
