/**
 * One cluster, one owner. A cluster name on a NATS server names one cluster:
 * a second deployment under the same name (another `frontier start` with
 * another data directory) would claim or split its slots and answer for it.
 *
 * The cluster's identity is a random id made when the cluster is first
 * created, kept in the slot bucket under CLUSTER_IDENTITY_KEY (a `create`:
 * of two writers racing, exactly one wins and the other reads the winner's).
 * Each shard's data directory records, in IDENTITY_FILE, the identity of the
 * cluster it joined and a random id of its own (`dataId`), the first time it
 * serves; the bucket records under `shard.<id>` which data directory holds
 * each shard id. Neither key is a `slot.*` key, so slot watchers skip them.
 *
 * At every start of a shard, before it claims a slot:
 *   - a data directory recorded for another cluster identity: refused
 *     (CLUSTER_MISMATCH), naming both;
 *   - no identity in the bucket: created, from the data directory's record
 *     when it has one (a NATS store that was lost keeps its cluster), else new;
 *   - a fresh data directory (no record) in a cluster that exists: joins when
 *     the caller allows it (`frontier shard`, `frontier start --join`, or the
 *     host that checked the identity itself), else refused (CLUSTER_EXISTS);
 *   - a shard id another data directory holds: refused (SHARD_ID_TAKEN).
 *
 * Costs: two or three KV reads and at most two creates per shard start;
 * nothing on any request path.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ID_SPACE_KEY, type IdSpace, isIdSpace, slotBucketName } from "@frontier/protocol";
import type { KV } from "@nats-io/kv";
import { writeFileDurably } from "./durable-file.js";

/** The bucket key of the cluster's identity (its value: the id, UTF-8). */
export const CLUSTER_IDENTITY_KEY = "cluster.identity";
/** The file in a shard's data directory that records the cluster it belongs to. */
export const IDENTITY_FILE = "cluster-identity.json";

/** `shard.<id>`: which data directory (its `dataId`) holds shard id `id`. */
export function shardKey(shardId: string): string {
  return `shard.${shardId}`;
}

export const ClusterIdentityErrorCode = {
  /** The data directory belongs to another cluster identity than the one of this name on this NATS. */
  CLUSTER_MISMATCH: "CLUSTER_MISMATCH",
  /** A cluster of this name exists on this NATS, and this fresh data directory was not told to join it. */
  CLUSTER_EXISTS: "CLUSTER_EXISTS",
  /** Another data directory holds this shard id in the cluster. */
  SHARD_ID_TAKEN: "SHARD_ID_TAKEN",
  /** The data directory's identity record cannot be read (not JSON, fields missing). */
  IDENTITY_UNREADABLE: "IDENTITY_UNREADABLE",
  /** The cluster was created with another id space than this shard was started with (`--id-space`). */
  ID_SPACE_MISMATCH: "ID_SPACE_MISMATCH",
} as const;
export type ClusterIdentityErrorCode =
  (typeof ClusterIdentityErrorCode)[keyof typeof ClusterIdentityErrorCode];

/** A start refused for the cluster's identity; `code` says which rule. Never retryable as it is. */
export class ClusterIdentityError extends Error {
  override readonly name = "ClusterIdentityError";
  constructor(
    readonly code: ClusterIdentityErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What a data directory records of the cluster it joined. */
export interface DataIdentity {
  readonly cluster: string;
  readonly clusterId: string;
  readonly shardId: string;
  /** This directory's own id, registered under `shard.<shardId>`. */
  readonly dataId: string;
  /** When it joined, ISO 8601 (for people). */
  readonly joinedAt: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The record in `dataDir`, or undefined when it has none (a fresh directory, or one from before the record). */
export function readDataIdentity(dataDir: string): DataIdentity | undefined {
  const path = join(dataDir, IDENTITY_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.IDENTITY_UNREADABLE,
      `${path} is not readable JSON (${(error as Error).message}); restore it, or move the directory away`,
    );
  }
  const r = parsed as Partial<Record<keyof DataIdentity, unknown>>;
  const fields = ["cluster", "clusterId", "shardId", "dataId", "joinedAt"] as const;
  const missing = fields.filter((f) => typeof r?.[f] !== "string" || (r[f] as string).length === 0);
  if (missing.length > 0) {
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.IDENTITY_UNREADABLE,
      `${path} lacks ${missing.join(", ")}; restore it, or move the directory away`,
    );
  }
  return r as DataIdentity;
}

/** Writes the record atomically and durably (durable-file.ts). */
export function writeDataIdentity(dataDir: string, identity: DataIdentity): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileDurably(dataDir, IDENTITY_FILE, `${JSON.stringify(identity, null, 2)}\n`, 0o644);
}

/** The data directories whose records decide, each with its record (undefined: fresh). */
export interface RecordedDir {
  readonly dataDir: string;
  readonly record: DataIdentity | undefined;
}

export interface ResolveOptions {
  readonly cluster: string;
  readonly dirs: readonly RecordedDir[];
  /** A fresh directory may join a cluster that exists. */
  readonly join: boolean;
  /** The identity a host established already: its fresh directories join that one only. */
  readonly expected?: string;
}

/**
 * The cluster's identity, created when the bucket has none, after the
 * checks above (throws ClusterIdentityError). `created`: this call made it.
 */
export async function resolveClusterIdentity(
  kv: KV,
  o: ResolveOptions,
): Promise<{ clusterId: string; created: boolean }> {
  const recorded = [...new Set(o.dirs.flatMap((d) => (d.record ? [d.record.clusterId] : [])))];
  if (recorded.length > 1) {
    const which = o.dirs.map((d) => `${d.dataDir}: ${d.record?.clusterId ?? "fresh"}`).join("; ");
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.CLUSTER_MISMATCH,
      `the data directories belong to different clusters (${which}); start each with its own cluster`,
    );
  }
  const own = recorded[0];
  let clusterId = await readIdentity(kv);
  let created = false;
  if (clusterId === undefined) {
    const id = own ?? o.expected ?? randomUUID();
    try {
      await kv.create(CLUSTER_IDENTITY_KEY, encoder.encode(id));
      clusterId = id;
      created = true;
    } catch (error) {
      // Another shard created it first: read the winner's, and check against it.
      clusterId = await readIdentity(kv);
      if (clusterId === undefined) throw error;
    }
  }
  const bucket = slotBucketName(o.cluster);
  if (own !== undefined && own !== clusterId) {
    const dir = o.dirs.find((d) => d.record?.clusterId === own)!.dataDir;
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.CLUSTER_MISMATCH,
      `data directory ${dir} belongs to cluster ${JSON.stringify(o.cluster)} with identity ${own}, ` +
        `but the cluster of that name on this NATS has identity ${clusterId} (${bucket}, key ${CLUSTER_IDENTITY_KEY}): ` +
        "another deployment uses the name. Start with another --cluster name, or another NATS server",
    );
  }
  if (o.expected !== undefined && o.expected !== clusterId) {
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.CLUSTER_MISMATCH,
      `cluster ${JSON.stringify(o.cluster)} was expected to have identity ${o.expected}, but has ${clusterId} now`,
    );
  }
  const fresh = o.dirs.filter((d) => d.record === undefined);
  if (!created && own === undefined && o.expected === undefined && fresh.length > 0 && !o.join) {
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.CLUSTER_EXISTS,
      `cluster ${JSON.stringify(o.cluster)} already exists on this NATS (identity ${clusterId}), ` +
        `and data directory ${fresh[0]!.dataDir} has never been part of it: is another instance running under that name? ` +
        "To add these shards to it, start with --join (and shard ids of their own); else use another --cluster name",
    );
  }
  return { clusterId, created };
}

export interface EnrollOptions {
  readonly cluster: string;
  readonly clusterId: string;
  readonly shardId: string;
  readonly dataDir: string;
  readonly record: DataIdentity | undefined;
  /** The id a fresh directory takes (its record has none yet); default a random one. */
  readonly dataId?: string;
}

/**
 * Throws SHARD_ID_TAKEN when another data directory holds the shard id. A
 * read: a start checks it before it opens (and so creates) its directory.
 */
export async function checkShardId(kv: KV, o: EnrollOptions): Promise<void> {
  const holder = await readValue(kv, shardKey(o.shardId));
  if (holder !== undefined && holder !== o.record?.dataId) throw shardIdTaken(o, holder);
}

/**
 * Registers the shard id for its data directory (`shard.<id>`, a create)
 * and records the cluster in the directory when it has no record yet.
 * Throws SHARD_ID_TAKEN when another directory holds the id. Idempotent.
 * Called with the directory open (its lock held), so no other process of
 * this directory writes the record at the same time.
 */
export async function enrollShard(kv: KV, o: EnrollOptions): Promise<DataIdentity> {
  const record: DataIdentity = o.record ?? {
    cluster: o.cluster,
    clusterId: o.clusterId,
    shardId: o.shardId,
    dataId: o.dataId ?? randomUUID(),
    joinedAt: new Date().toISOString(),
  };
  const key = shardKey(o.shardId);
  let holder = await readValue(kv, key);
  if (holder === undefined) {
    try {
      await kv.create(key, encoder.encode(record.dataId));
      holder = record.dataId;
    } catch (error) {
      // Another directory registered the id first (or our own create's reply was lost): read it.
      holder = await readValue(kv, key);
      if (holder === undefined) throw error;
    }
  }
  if (holder !== record.dataId) throw shardIdTaken(o, holder);
  if (o.record === undefined) writeDataIdentity(o.dataDir, record);
  return record;
}

export interface TakeOverOptions {
  readonly cluster: string;
  readonly shardId: string;
  /** The standby's directory, which becomes the shard's. */
  readonly dataDir: string;
  /** Its new id (the one that wrote the takeover marker into the shard's journal stream). */
  readonly dataId: string;
}

/**
 * A standby becomes the shard (standby.ts): `shard.<id>` is moved to the
 * standby's directory, revision-checked against the entry read (an
 * `update`, never a `put`: of two standbys racing, one wins), and the
 * directory records the cluster. From then on the old directory is refused
 * at its start (SHARD_ID_TAKEN). Throws when the cluster has no identity
 * (nothing to take over) or the key changed under it.
 */
export async function takeOverShardId(kv: KV, o: TakeOverOptions): Promise<DataIdentity> {
  const clusterId = await readIdentity(kv);
  if (clusterId === undefined)
    throw new Error(`cluster ${JSON.stringify(o.cluster)} has no identity: there is no shard to take over`);
  const key = shardKey(o.shardId);
  const entry = await kv.get(key);
  const value = encoder.encode(o.dataId);
  if (entry === null) await kv.create(key, value);
  else await kv.update(key, value, entry.revision);
  const record: DataIdentity = {
    cluster: o.cluster,
    clusterId,
    shardId: o.shardId,
    dataId: o.dataId,
    joinedAt: new Date().toISOString(),
  };
  writeDataIdentity(o.dataDir, record);
  return record;
}

function shardIdTaken(o: EnrollOptions, holder: string): ClusterIdentityError {
  const key = shardKey(o.shardId);
  return new ClusterIdentityError(
    ClusterIdentityErrorCode.SHARD_ID_TAKEN,
    `shard id ${o.shardId} of cluster ${JSON.stringify(o.cluster)} is held by another data directory ` +
      `(${holder}; ${o.dataDir} is ${o.record === undefined ? "fresh" : o.record.dataId}): ` +
      "two shards under one id would answer for each other. Give this shard an id of its own " +
      "(frontier shard --id, frontier start --first-shard); if the other directory is gone for good, " +
      `delete key ${key} of bucket ${slotBucketName(o.cluster)} first`,
  );
}

/**
 * The cluster's id space (@frontier/protocol id-space.ts): `wanted`, written
 * with a `create` when the bucket has none (a new cluster, or one from
 * before the key: of two shards racing, exactly one writes it); else the
 * bucket's, which must be `wanted` — a cluster whose members disagree on
 * it would refuse some duplicate ids and accept others, so a shard started
 * with another one is refused (ID_SPACE_MISMATCH), changing nothing.
 */
export async function resolveIdSpace(kv: KV, cluster: string, wanted: IdSpace): Promise<IdSpace> {
  let stored = await readValue(kv, ID_SPACE_KEY);
  if (stored === undefined) {
    try {
      await kv.create(ID_SPACE_KEY, encoder.encode(wanted));
      return wanted;
    } catch (error) {
      stored = await readValue(kv, ID_SPACE_KEY);
      if (stored === undefined) throw error;
    }
  }
  if (stored !== wanted) {
    throw new ClusterIdentityError(
      ClusterIdentityErrorCode.ID_SPACE_MISMATCH,
      `cluster ${JSON.stringify(cluster)} keeps task ids unique per ${isIdSpace(stored) ? stored : JSON.stringify(stored)} ` +
        `(${slotBucketName(cluster)}, key ${ID_SPACE_KEY}), and this shard was started with --id-space ${wanted}; ` +
        `start it with --id-space ${isIdSpace(stored) ? stored : "as the cluster was created"}`,
    );
  }
  return wanted;
}

async function readIdentity(kv: KV): Promise<string | undefined> {
  return readValue(kv, CLUSTER_IDENTITY_KEY);
}

/** The value under `key`, or undefined when it has none (never written, deleted or purged). */
async function readValue(kv: KV, key: string): Promise<string | undefined> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== "PUT") return undefined;
  return decoder.decode(entry.value);
}
