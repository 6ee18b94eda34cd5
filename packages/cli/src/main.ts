/**
 * `frontier`: the command table, help, and the one place where a failure
 * becomes one line on stderr and an exit code (see errors.ts).
 */
import { createRequire } from "node:module";
import { PROTOCOL_VERSION } from "@frontier/protocol";
import { COMMON_OPTIONS, type OptionSpecs, optionHelp, parse, target } from "./args.js";
import {
  CANCEL_OPTIONS,
  COMPLETE_OPTIONS,
  type CommandContext,
  cancel,
  complete,
  FAIL_OPTIONS,
  fail,
  LEASE_OPTIONS,
  lease,
  RELEASE_OPTIONS,
  release,
  STATUS_OPTIONS,
  SUBMIT_OPTIONS,
  status,
  submit,
} from "./client-commands.js";
import { CREDENTIALS_OPTIONS } from "./credentials-command.js";
import { CliError, describeError, ExitCode, usageError } from "./errors.js";
import { type Io, println, processIo } from "./io.js";
import {
  LIST_OPTIONS,
  list,
  RETRY_OPTIONS,
  retry,
  SHOW_OPTIONS,
  show,
  TOP_OPTIONS,
  top,
} from "./query-commands.js";
import { SCHEDULE_OPTIONS } from "./schedule-command.js";
import {
  CONSOLE_OPTIONS,
  COORDINATOR_OPTIONS,
  REBALANCE_OPTIONS,
  SHARD_OPTIONS,
  START_OPTIONS,
} from "./service-options.js";
import { WORK_OPTIONS, work } from "./work-command.js";

/** This package's version (package.json sits one level above src/ and dist/ alike). */
const CLI_VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string })
  .version;

// The service commands load the shard engine, LMDB, piscina and pino: only when run,
// so the client commands start quickly.
const start = async (ctx: CommandContext) => (await import("./service-commands.js")).start(ctx);
const shard = async (ctx: CommandContext) => (await import("./service-commands.js")).shard(ctx);
const coordinator = async (ctx: CommandContext) => (await import("./service-commands.js")).coordinator(ctx);
const consoleCommand = async (ctx: CommandContext) =>
  (await import("./console-command.js")).consoleCommand(ctx);
const scheduleCommand = async (ctx: CommandContext) => (await import("./schedule-command.js")).schedule(ctx);
const credentials = async (ctx: CommandContext) =>
  (await import("./credentials-command.js")).credentials(ctx);
const rebalance = async (ctx: CommandContext) => (await import("./rebalance-command.js")).rebalance(ctx);
/** `frontier shard drain ID` is an admin's client command; `frontier shard` otherwise runs shards. */
const shardOrDrain = async (ctx: CommandContext) => {
  const [action, id, ...extra] = ctx.parsed.positionals;
  if (action !== "drain") return shard(ctx);
  if (extra.length > 0) throw usageError(`shard drain: unexpected argument ${JSON.stringify(extra[0])}`);
  return (await import("./rebalance-command.js")).drain({ ...ctx, command: "shard drain" }, id);
};

export interface CommandDef {
  readonly summary: string;
  /** Arguments after the command name, for the usage line. */
  readonly args: string;
  readonly options: OptionSpecs;
  readonly run: (ctx: CommandContext) => Promise<void>;
}

/** Every subcommand of `frontier`. */
export const COMMANDS = {
  start: {
    summary: "run a coordinator and N shard actors in one process (and NATS, if none is running)",
    args: "[--data DIR] [--shards N] [--metrics-port P]",
    options: START_OPTIONS,
    run: start,
  },
  shard: {
    summary:
      "run shard actors alone (one host of a multi-host cluster); `shard drain ID`: move all of shard ID's slots to the other shards (admin)",
    args: "[--id ID] [--data DIR] [--slots SPEC] | drain ID [--dry-run]",
    options: SHARD_OPTIONS,
    run: shardOrDrain,
  },
  coordinator: {
    summary: "run a coordinator alone (several may run; clients reach any of them)",
    args: "[--metrics-port P]",
    options: COORDINATOR_OPTIONS,
    run: coordinator,
  },
  console: {
    summary:
      "serve the web console of a running cluster (the admin role's actions with a credentials directory)",
    args: "[--console-port P] [--console-host HOST]",
    options: CONSOLE_OPTIONS,
    run: consoleCommand,
  },
  schedule: {
    summary:
      "recurring tasks: add ID --every DUR | --cron EXPR [--tz ZONE], --deadline DUR; list; remove ID (admin)",
    args: "add ID (--every DUR | --cron EXPR [--tz ZONE]) --deadline DUR [--start WHEN] [--workflow W] [--payload JSON] | list | remove ID",
    options: SCHEDULE_OPTIONS,
    run: scheduleCommand,
  },
  rebalance: {
    summary: "move slots between live shards, one at a time, until each holds 1024 / shards ± 1 (admin)",
    args: "[--dry-run]",
    options: REBALANCE_OPTIONS,
    run: rebalance,
  },
  credentials: {
    summary: "make a cluster's NATS credentials: a key per role and per shard, and the server's auth.conf",
    args: "--dir DIR [--shards ID,ID…]",
    options: CREDENTIALS_OPTIONS,
    run: credentials,
  },
  submit: {
    summary: "submit tasks from a file of JSON lines or a JSON array (- for stdin)",
    args: "FILE|- [--idempotency-key K]",
    options: SUBMIT_OPTIONS,
    run: submit,
  },
  lease: {
    summary: "lease runnable tasks, earliest deadline first",
    args: "[--max N] [--lease-ms MS] [--worker ID] [--wait-ms MS]",
    options: LEASE_OPTIONS,
    run: lease,
  },
  complete: {
    summary: "complete a leased task",
    args: "ID --token T --secret S",
    options: COMPLETE_OPTIONS,
    run: complete,
  },
  fail: {
    summary: "fail a leased task (it is retried while it has attempts left, unless --no-retry)",
    args: "ID --token T --secret S [--no-retry] [--reason TEXT]",
    options: FAIL_OPTIONS,
    run: fail,
  },
  release: {
    summary: "hand a leased task back unstarted: runnable again at once, its attempt not spent",
    args: "ID --token T --secret S",
    options: RELEASE_OPTIONS,
    run: release,
  },
  cancel: {
    summary: "cancel a task (and, by default, the tasks that depend on it)",
    args: "ID [--reason TEXT]",
    options: CANCEL_OPTIONS,
    run: cancel,
  },
  status: {
    summary: "show the cluster's counters, or one task",
    args: "[ID]",
    options: STATUS_OPTIONS,
    run: status,
  },
  list: {
    summary: "list tasks by state or workflow, earliest deadline first, a page at a time",
    args: "[--state S[,S…]] [--workflow W] [--limit N] [--cursor C]",
    options: LIST_OPTIONS,
    run: list,
  },
  show: {
    summary: "show a task with its prerequisites and dependents, or a workflow's DAG with each task's state",
    args: "ID [--workflow W] | --workflow W",
    options: SHOW_OPTIONS,
    run: show,
  },
  retry: {
    summary: "run a FAILED, CANCELLED or EXPIRED task again from its first attempt (admin)",
    args: "ID [--workflow W] [--deadline MS]",
    options: RETRY_OPTIONS,
    run: retry,
  },
  top: {
    summary: "the cluster's backlog, rates, leases and misses, refreshed every second (--once: one snapshot)",
    args: "[--once]",
    options: TOP_OPTIONS,
    run: top,
  },
  work: {
    summary:
      "run CMD once per leased task (task JSON on stdin, FRONTIER_TASK_ID in env); exit 0 completes it",
    args: "[--concurrency N] -- CMD ARGS…",
    options: WORK_OPTIONS,
    run: work,
  },
} as const satisfies Record<string, CommandDef>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

export function globalHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const list = Object.entries(COMMANDS)
    .map(([name, def]) => `  ${name.padEnd(width)}  ${def.summary}`)
    .join("\n");
  return `frontier: a deadline-ordered, dependency-aware job scheduler on NATS

Usage: frontier COMMAND [options]

Commands:
${list}

Every command takes:
${optionHelp(COMMON_OPTIONS)}

Run \`frontier COMMAND --help\` for a command's options; \`frontier --version\` for the version.`;
}

export function commandHelp(name: CommandName): string {
  const def: CommandDef = COMMANDS[name];
  return `Usage: frontier ${name} ${def.args}

${def.summary}

Options:
${optionHelp({ ...def.options, ...COMMON_OPTIONS })}`;
}

/** Run `frontier argv…`; resolves with the exit code. Never throws. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? rest[0] : undefined;
    if (topic !== undefined && isCommand(topic)) println(io.stdout, commandHelp(topic));
    else println(name === undefined ? io.stderr : io.stdout, globalHelp());
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    println(io.stdout, `frontier ${CLI_VERSION} (protocol ${PROTOCOL_VERSION})`);
    return ExitCode.OK;
  }
  if (!isCommand(name)) {
    println(io.stderr, `frontier: unknown command ${JSON.stringify(name)} (see frontier --help)`);
    return ExitCode.USAGE;
  }
  const def: CommandDef = COMMANDS[name];
  let context: { natsUrl?: string; cluster?: string } = {};
  try {
    const parsed = parse(name, rest, def.options);
    if (parsed.values["help"] === true) {
      println(io.stdout, commandHelp(name));
      return ExitCode.OK;
    }
    context = target(name, parsed, io);
    await def.run({ io, parsed, command: name });
    return ExitCode.OK;
  } catch (err) {
    const line = describeError(err, context);
    println(io.stderr, line.startsWith(`${name}: `) ? `frontier ${line}` : `frontier ${name}: ${line}`);
    return err instanceof CliError ? err.exitCode : ExitCode.FAILED;
  }
}
