/**
 * A shard actor as the whole of an OS process: what `frontier shard` runs
 * on each host of a cluster.
 *
 * It waits for NATS when NATS is not up yet (containers start in any
 * order), stops cleanly on SIGINT / SIGTERM (exit code 0), and exits with
 * code 1 when its shard fails, so that the process supervisor (systemd
 * `Restart=on-failure`, docker `restart: on-failure`) starts it again on the
 * same data directory. It never restarts itself: one owner of the data
 * directory at a time.
 */
import { InvalidArgumentError } from "@frontier/core";
import { DEFAULT_NATS_URL, isLogLevel, type ShardActorOptions } from "./options.js";
import { ShardActor } from "./shard-actor.js";
import { messageOf } from "./util.js";

export interface ShardProcessOptions extends Omit<ShardActorOptions, "nc" | "natsUrl"> {
  /** NATS server URL(s). Default DEFAULT_NATS_URL. */
  readonly natsUrl?: string | readonly string[];
  /** Wait for NATS when it does not answer at start. Default true. */
  readonly waitForNats?: boolean;
  /** Close cleanly and exit 0 on SIGINT and SIGTERM. Default true. */
  readonly handleSignals?: boolean;
  /** Ends the process with a code; default `process.exit`. */
  readonly exit?: (code: number) => void;
}

export interface ShardProcess {
  readonly actor: ShardActor;
  /** Resolves with the exit code once the actor has stopped: 0 after a signal or `stop()`, 1 when the shard failed. */
  readonly exited: Promise<number>;
  /** Closes the actor cleanly, then exits with code 0. */
  stop(): Promise<number>;
}

/** Checks the process-level options (the actor checks the rest); throws InvalidArgumentError naming the bad one. */
export function checkShardProcessOptions(options: ShardProcessOptions): {
  readonly handleSignals: boolean;
  readonly exit: (code: number) => void;
  readonly actor: ShardActorOptions;
} {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("shard process options must be an object");
  }
  const { handleSignals = true, exit = (code: number) => process.exit(code), ...actor } = options;
  if (typeof handleSignals !== "boolean") {
    throw new InvalidArgumentError(`shard process option "handleSignals" must be a boolean`);
  }
  if (typeof exit !== "function")
    throw new InvalidArgumentError(`shard process option "exit" must be a function`);
  return {
    handleSignals,
    exit,
    actor: { ...actor, natsUrl: actor.natsUrl ?? DEFAULT_NATS_URL, waitForNats: actor.waitForNats ?? true },
  };
}

/**
 * Starts the actor and runs it until a signal, `stop()`, or a shard
 * failure. Rejects when the actor cannot start (bad options, data directory
 * held by another process, ...): the caller prints the error and exits
 * non-zero.
 */
export async function runShardProcess(options: ShardProcessOptions): Promise<ShardProcess> {
  const { handleSignals, exit, actor: actorOptions } = checkShardProcessOptions(options);
  const actor = await ShardActor.start(actorOptions);
  let exitCode: number | undefined;
  let resolveExited!: (code: number) => void;
  const exited = new Promise<number>((resolve) => {
    resolveExited = resolve;
  });

  const finish = async (code: number): Promise<number> => {
    if (exitCode !== undefined) return exited;
    exitCode = code;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await actor.close().catch(() => {});
    resolveExited(code);
    exit(code);
    return code;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    actor.logger.info({ signal }, "signal received; closing");
    void finish(0);
  };
  if (handleSignals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  void actor.done().then((end) => {
    if (end.kind === "failed") {
      actor.logger.error(
        { err: messageOf(end.error) },
        "shard failed; exiting with code 1 for the process supervisor to restart it",
      );
      void finish(1);
    }
  });
  return { actor, exited, stop: () => finish(0) };
}

/**
 * Options from the environment, for containers: FRONTIER_NATS_URL,
 * FRONTIER_CLUSTER, FRONTIER_SHARD_ID, FRONTIER_DATA_DIR, FRONTIER_SLOTS
 * ("auto", or ranges like "0-511"), FRONTIER_LOG_LEVEL. Unset variables are
 * left out (the defaults apply; shardId and dataDir are required).
 */
export function shardProcessOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Partial<ShardProcessOptions> {
  const options: { -readonly [K in keyof ShardProcessOptions]?: ShardProcessOptions[K] } = {};
  if (env["FRONTIER_NATS_URL"]) options.natsUrl = env["FRONTIER_NATS_URL"];
  if (env["FRONTIER_CLUSTER"]) options.cluster = env["FRONTIER_CLUSTER"];
  if (env["FRONTIER_SHARD_ID"]) options.shardId = env["FRONTIER_SHARD_ID"];
  if (env["FRONTIER_DATA_DIR"]) options.dataDir = env["FRONTIER_DATA_DIR"];
  if (env["FRONTIER_SLOTS"]) options.slots = env["FRONTIER_SLOTS"];
  const level = env["FRONTIER_LOG_LEVEL"];
  if (level) {
    if (!isLogLevel(level))
      throw new InvalidArgumentError(`FRONTIER_LOG_LEVEL: unknown level ${JSON.stringify(level)}`);
    options.logLevel = level;
  }
  return options;
}
