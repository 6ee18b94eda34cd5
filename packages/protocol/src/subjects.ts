/**
 * NATS subjects, all under one cluster name so several clusters can share a
 * NATS server:
 *
 *   frontier.<cluster>.coord.<op>             coordinators; clients request here,
 *                                             coordinators subscribe in queue group
 *                                             COORDINATOR_QUEUE (one of them answers)
 *   frontier.<cluster>.shard.<shardId>.<op>   one shard actor; coordinators request here
 *   frontier.<cluster>.frontier               shards publish FrontierAnnouncements
 *   frontier-<cluster>-slots                  the JetStream KV bucket of slot owners
 *                                             (keys `slot.<n>`; shards write, coordinators read)
 *   frontier.<cluster>.journal.<shardId>      a shard's journal blocks (journal shipping), kept
 *                                             in the stream frontier-<cluster>-journal-<shardId>
 *
 * Cluster names and shard ids become subject tokens, so they are restricted
 * to [A-Za-z0-9_-] (no `.`, `*`, `>` or whitespace, which NATS gives meaning)
 * and at most MAX_TOKEN_LENGTH characters.
 */
import { InvalidArgumentError } from "@frontier/core";
import { isOp, OPS, type Op } from "./messages.js";

export const SUBJECT_ROOT = "frontier";
/** Queue group of the coordinators on `frontier.<cluster>.coord.*`. */
export const COORDINATOR_QUEUE = "frontier-coordinators";
export const MAX_TOKEN_LENGTH = 64;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Whether `s` can be a cluster name or shard id. */
export function isValidToken(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && s.length <= MAX_TOKEN_LENGTH && TOKEN.test(s);
}

function token(kind: "cluster name" | "shard id", s: unknown): string {
  if (isValidToken(s)) return s;
  throw new InvalidArgumentError(
    `${kind} must be 1..${MAX_TOKEN_LENGTH} characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(s)}`,
  );
}

function op(o: unknown): Op {
  if (isOp(o)) return o;
  throw new InvalidArgumentError(`op must be one of ${OPS.join(", ")}, got ${JSON.stringify(o)}`);
}

/** The subjects of one cluster. Built by `subjectsFor`, which checks the name once. */
export interface ClusterSubjects {
  readonly cluster: string;
  /** `frontier.<cluster>.coord.<op>`: where clients send requests. */
  coord(op: Op): string;
  /** `frontier.<cluster>.coord.*`: what a coordinator subscribes to (in COORDINATOR_QUEUE). */
  readonly coordAll: string;
  /** `frontier.<cluster>.shard.<shardId>.<op>`: where coordinators reach one shard. */
  shard(shardId: string, op: Op): string;
  /** `frontier.<cluster>.shard.<shardId>.*`: what a shard subscribes to. */
  shardAll(shardId: string): string;
  /** `frontier.<cluster>.shard.*.<op>` (every op: `shard.*.*`): one operation at any shard, for permissions. */
  anyShard(op?: Op): string;
  /** `frontier.<cluster>.frontier`: frontier announcements. */
  readonly frontier: string;
  /** `frontier.<cluster>.>`: everything of the cluster (for taps and debugging). */
  readonly all: string;
  /** `frontier-<cluster>-slots`: the KV bucket of slot owners (its stream is `KV_<bucket>`). */
  readonly slotBucket: string;
  /** `frontier.<cluster>.journal.<shardId>`: where a shard ships its journal blocks (docs/cluster.md, "Standby shards"). */
  journal(shardId: string): string;
  /** `frontier-<cluster>-journal-<shardId>`: the JetStream stream that keeps them. */
  journalStream(shardId: string): string;
  /** `frontier.<cluster>.journal.<shardId>.taken`: a standby's word, to the old primary, that it took the shard over (not kept). */
  journalTaken(shardId: string): string;
}

/** `frontier-<cluster>-slots`: the KV bucket that maps `slot.<n>` to the shard owning slot n. */
export function slotBucketName(cluster: string): string {
  return `${SUBJECT_ROOT}-${token("cluster name", cluster)}-slots`;
}

/** The subjects of `cluster`; throws InvalidArgumentError for a name that is not a valid token. */
export function subjectsFor(cluster: string): ClusterSubjects {
  const base = `${SUBJECT_ROOT}.${token("cluster name", cluster)}`;
  return {
    cluster,
    coord: (o) => `${base}.coord.${op(o)}`,
    coordAll: `${base}.coord.*`,
    shard: (shardId, o) => `${base}.shard.${token("shard id", shardId)}.${op(o)}`,
    shardAll: (shardId) => `${base}.shard.${token("shard id", shardId)}.*`,
    anyShard: (o) => `${base}.shard.*.${o === undefined ? "*" : op(o)}`,
    frontier: `${base}.frontier`,
    all: `${base}.>`,
    slotBucket: slotBucketName(cluster),
    journal: (shardId) => `${base}.journal.${token("shard id", shardId)}`,
    journalTaken: (shardId) => `${base}.journal.${token("shard id", shardId)}.taken`,
    journalStream: (shardId) => `${SUBJECT_ROOT}-${cluster}-journal-${token("shard id", shardId)}`,
  };
}

export type ParsedSubject =
  | { readonly role: "coord"; readonly cluster: string; readonly op: Op }
  | { readonly role: "shard"; readonly cluster: string; readonly shardId: string; readonly op: Op }
  | { readonly role: "frontier"; readonly cluster: string };

/**
 * What a concrete subject addresses, or null when it is not one of ours.
 * A responder subscribed to `coordAll` / `shardAll` learns the op here.
 */
export function parseSubject(subject: string): ParsedSubject | null {
  const t = subject.split(".");
  if (t[0] !== SUBJECT_ROOT || !isValidToken(t[1])) return null;
  const cluster = t[1];
  if (t.length === 3 && t[2] === "frontier") return { role: "frontier", cluster };
  if (t.length === 4 && t[2] === "coord" && isOp(t[3])) return { role: "coord", cluster, op: t[3] };
  if (t.length === 5 && t[2] === "shard" && isValidToken(t[3]) && isOp(t[4])) {
    return { role: "shard", cluster, shardId: t[3], op: t[4] };
  }
  return null;
}
