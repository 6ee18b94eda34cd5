/**
 * Options of the service commands (start, shard, coordinator), apart from
 * their implementation so that `--help` and the command table do not load
 * the cluster's modules.
 */
import { DEFAULT_CONSOLE_HOST, DEFAULT_CONSOLE_PORT } from "@frontier/console/defaults";
import type { OptionSpecs } from "./args.js";
import { metricsOptions } from "./metrics/options.js";

/** Where `start` and `shard` keep their data when told nothing (git-ignored in the repository). */
export const DEFAULT_DATA_DIR = ".frontier";
/** Shard actors `start` runs when told nothing. */
export const DEFAULT_START_SHARDS = 2;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_OPTION = {
  "log-level": {
    type: "string",
    value: "LEVEL",
    description: `log level (${LOG_LEVELS.join(", ")}); logs are JSON lines on stdout`,
  },
} as const satisfies OptionSpecs;

/** How failed tasks are retried: the shards' backoff (engine option `backoff`). */
const BACKOFF_OPTIONS = {
  "backoff-base-ms": {
    type: "string",
    value: "MS",
    description: "delay before a failed task's first retry, doubling per attempt (default 1000)",
  },
  "backoff-max-ms": {
    type: "string",
    value: "MS",
    description: "longest delay between two attempts of a task (default 300000)",
  },
  "max-runnable-wait-ms": {
    type: "string",
    value: "MS",
    description:
      "starvation guard: a task runnable this long is ordered as if due then, ahead of later deadlines (default: off)",
  },
  "forward-references": {
    type: "boolean",
    description:
      "let a task name prerequisites of its workflow not submitted yet; it waits for them (default: off)",
  },
} as const satisfies OptionSpecs;

/** When a shard acknowledges a change, for `start` and `shard` (docs/guarantees.md, "Durability"). */
export const DURABILITIES = ["flushed", "committed"] as const;
export type Durability = (typeof DURABILITIES)[number];
const DURABILITY_OPTION = {
  durability: {
    type: "string",
    value: "MODE",
    description:
      "flushed: acknowledge a change once on disk (default; nothing acknowledged is lost, even to a power cut); committed: once written to the OS, lower latency, and a power cut (not a killed process) may lose the last few milliseconds acknowledged",
  },
} as const satisfies OptionSpecs;

/** Automatic rebalancing, for `start` and `shard`. */
const AUTO_REBALANCE_OPTION = {
  "auto-rebalance": {
    type: "boolean",
    description:
      "every 5 s, a shard above its share of the slots moves one to a shard below it (a shard that joins gets its share; default: off, run `frontier rebalance`)",
  },
} as const satisfies OptionSpecs;

/** Most replicas a JetStream stream takes (NATS's own limit). */
export const MAX_KV_REPLICAS = 5;

const KV_REPLICAS_OPTION = {
  "kv-replicas": {
    type: "string",
    value: "N",
    description: `copies NATS keeps of the slot bucket and of each shard's journal stream, 1..${MAX_KV_REPLICAS} (default 1; 3 on a NATS cluster of 3 or more): made with N, or scaled up to N when they exist with fewer; a single nats-server keeps 1`,
  },
} as const satisfies OptionSpecs;

/** How far task ids are unique, for `start` and `shard`: a property of the cluster, set at its creation. */
const ID_SPACE_OPTION = {
  "id-space": {
    type: "string",
    value: "SCOPE",
    description:
      "cluster: a task id is unique in the whole cluster (default; a batch whose ids are homed on other shards than their workflows costs a two-phase submit); workflow: unique per shard only (cheaper submits, but two workflows on two shards may share an id, so name tasks with their workflow). Set when the cluster is created; a shard started with the other is refused",
  },
} as const satisfies OptionSpecs;

/** How far a settle's next leases may run ahead of the other shards', for `start` and `shard`. */
const ORDER_WINDOW_OPTION = {
  "order-window": {
    type: "string",
    value: "N|shard",
    description:
      "order across shards of the leases a worker's completes bring back: 0 (default) keeps exact earliest-deadline-first (a shard grants only its tasks before every other shard's first, so with several shards most leases come from coordinator rounds); N lets a shard grant its part of the cluster's first N runnable tasks (faster with several shards, a grant may pass up to N-1 earlier tasks elsewhere); shard: each shard's own order only. Give every shard the same",
  },
} as const satisfies OptionSpecs;

/** Limits of what a shard holds for multi-shard submits (refused as OVERLOADED beyond). */
const PREPARED_OPTIONS = {
  "max-prepared-parts": {
    type: "string",
    value: "N",
    description: "prepared parts of multi-shard submits a shard holds at once (default 1000)",
  },
  "max-prepared-bytes": {
    type: "string",
    value: "BYTES",
    description: "their encoded bytes at once (default 67108864)",
  },
} as const satisfies OptionSpecs;

/** Limits of what a shard holds (a submit past one is refused as OVERLOADED); defaults: the Shard's. */
const SHARD_LIMIT_OPTIONS = {
  "max-live-tasks": {
    type: "string",
    value: "N",
    description: "tasks not yet finished a shard holds (default 5000000)",
  },
  "max-stored-bytes": {
    type: "string",
    value: "BYTES",
    description:
      "payload bytes of the tasks a shard holds, finished ones until compacted (default 1073741824)",
  },
  "max-idempotency-keys": {
    type: "string",
    value: "N",
    description: "submits' idempotency keys a shard remembers, each for a day (default 2000000)",
  },
} as const satisfies OptionSpecs;

/** Limit of waiting long-polls a coordinator holds (refused as OVERLOADED beyond). */
const LONG_POLL_OPTION = {
  "max-long-polls": {
    type: "string",
    value: "N",
    description: "lease long-polls a coordinator holds waiting at once (default 10000)",
  },
} as const satisfies OptionSpecs;

/** Where the web console listens (`start` serves it too, unless --no-console). */
const CONSOLE_ADDRESS_OPTIONS = {
  "console-port": {
    type: "string",
    value: "P",
    description: `serve the web console on http://HOST:P (default ${DEFAULT_CONSOLE_PORT}; 0: any free port)`,
  },
  "console-host": {
    type: "string",
    value: "HOST",
    description: `interface of the console (default ${DEFAULT_CONSOLE_HOST}; anyone who reaches it reads every task)`,
  },
} as const satisfies OptionSpecs;

export const CONSOLE_OPTIONS = {
  ...CONSOLE_ADDRESS_OPTIONS,
} as const satisfies OptionSpecs;

export const START_OPTIONS = {
  data: { type: "string", value: "DIR", description: `data directory (default ${DEFAULT_DATA_DIR})` },
  shards: {
    type: "string",
    value: "N",
    description: `shard actors, on worker threads (default ${DEFAULT_START_SHARDS})`,
  },
  "open-nats": {
    type: "boolean",
    description:
      "a nats-server started here admits anyone who reaches it (default: one key per role, made in DIR/credentials)",
  },
  join: {
    type: "boolean",
    description:
      "add these shards to a cluster of this name that exists on this NATS (default: refuse to start, as a second instance would); give them ids of their own with --first-shard",
  },
  "first-shard": {
    type: "string",
    value: "K",
    description: "the shards' ids start at shard-K (default 0)",
  },
  replicate: {
    type: "boolean",
    description:
      "journal shipping for every shard: each commit also goes to the JetStream stream frontier-<cluster>-journal-<id>, acknowledged once both hold it (a `frontier shard --standby` on another host can then take a shard over)",
  },
  ...BACKOFF_OPTIONS,
  ...DURABILITY_OPTION,
  ...PREPARED_OPTIONS,
  ...SHARD_LIMIT_OPTIONS,
  ...AUTO_REBALANCE_OPTION,
  ...ID_SPACE_OPTION,
  ...ORDER_WINDOW_OPTION,
  ...KV_REPLICAS_OPTION,
  ...LONG_POLL_OPTION,
  ...metricsOptions("start"),
  ...CONSOLE_ADDRESS_OPTIONS,
  "no-console": { type: "boolean", description: "serve no web console" },
  ...LOG_OPTION,
} as const satisfies OptionSpecs;

/** `frontier rebalance`'s options (the command itself loads only when run). */
export const REBALANCE_OPTIONS = {
  "dry-run": { type: "boolean", description: "print the moves it would make, and make none" },
} as const satisfies OptionSpecs;

export const SHARD_OPTIONS = {
  "dry-run": { type: "boolean", description: "shard drain: print the moves it would make, and make none" },
  id: {
    type: "string",
    value: "ID",
    description:
      "this shard's id, kept across restarts (default shard-0); a fresh shard joins the cluster of this name, or creates it",
  },
  data: {
    type: "string",
    value: "DIR",
    description: `data directory (default ${DEFAULT_DATA_DIR}/<id>); the same id needs the same directory`,
  },
  slots: {
    type: "string",
    value: "SPEC",
    description:
      'slots to own: "auto" (default: the ones it owns, else every free one), "0-511,700", or "I/N" (n mod N == I)',
  },
  takeover: {
    type: "boolean",
    description:
      "open the data directory even if its recorded owner looks alive (paused, or on a host that is gone); the old owner is fenced and can no longer write",
  },
  replicate: {
    type: "boolean",
    description:
      "journal shipping: every commit also goes to the JetStream stream frontier-<cluster>-journal-<id>, and is acknowledged once both hold it (what a --standby follows)",
  },
  standby: {
    type: "boolean",
    description:
      "follow shard --id's journal stream into --data (emptied first) and, once that shard has been silent for --failover-after, take it over (fencing the old primary) and serve it, replicating",
  },
  "failover-after": {
    type: "string",
    value: "MS",
    description:
      "with --standby: the primary's silence (no announcement) before the takeover (default 10000)",
  },
  ...BACKOFF_OPTIONS,
  ...DURABILITY_OPTION,
  ...PREPARED_OPTIONS,
  ...SHARD_LIMIT_OPTIONS,
  ...AUTO_REBALANCE_OPTION,
  ...ID_SPACE_OPTION,
  ...ORDER_WINDOW_OPTION,
  ...KV_REPLICAS_OPTION,
  ...metricsOptions("shard"),
  ...LOG_OPTION,
} as const satisfies OptionSpecs;

export const COORDINATOR_OPTIONS = {
  ...LONG_POLL_OPTION,
  ...metricsOptions("coordinator"),
  ...LOG_OPTION,
} as const satisfies OptionSpecs;
