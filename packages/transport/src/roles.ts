/**
 * Who may do what on NATS: the roles of a Frontier cluster and the subjects
 * each may publish and subscribe to. The NATS server enforces them (see
 * server-config.ts); this module is the one place that says what they are.
 *
 *   shard <id>    serves `frontier.<c>.shard.<id>.*`, announces its frontier,
 *                 alone writes the slot bucket (and may create it), and
 *                 alone sends `adopt` (a slot's tasks moving) and `holds` (an
 *                 id's home asking whether a claim's task is still held) to
 *                 other shards
 *   coordinator   serves `frontier.<c>.coord.*` in the coordinators' queue group
 *                 (it cannot subscribe to them outside the group), reads
 *                 announcements and the slot bucket, calls any shard operation
 *                 but `adopt` and `holds` (`moveSlot` only for an admin's move)
 *   worker        leases through a coordinator; heartbeat, complete, fail,
 *                 release and settle through a coordinator or straight at the
 *                 shard that granted the lease (the lease's secret authorizes
 *                 those)
 *   submitter     submits, reads tasks, task lists, workflows and stats,
 *                 through a coordinator; submits straight at a shard too (a
 *                 batch whose tasks it all holds), reading the slot bucket
 *   admin         every coordinator operation (cancel, deadlines, retry, leases
 *                 for debugging, `moveSlot`: rebalance and drain), a worker's
 *                 shard operations and a submitter's, reads the slot bucket
 *
 * Every role subscribes only under its own inbox prefix (`inboxPrefixOf`),
 * so no one reads another role's replies, and answers requests only through
 * NATS's `allow_responses` (one reply to a request it received). Nobody but
 * a shard may publish an announcement, write or delete the bucket, and
 * nobody but a coordinator may call `lease`, `prepare`, `commit`, `abort`,
 * `check`, `cancel`, `updateDeadline`, `getTask`, `stats`, `listTasks`,
 * `getWorkflow` or `retry` on a shard, and nobody but a coordinator, a
 * submitter or an admin `submit` (a shard checks a submit whoever sent it).
 */
import {
  type ClusterSubjects,
  COORDINATOR_QUEUE,
  OPS,
  type Op,
  scheduleBucketName,
  subjectsFor,
} from "@frontier/protocol";

export const ROLES = ["shard", "coordinator", "worker", "submitter", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** One identity on NATS: a role, and for a shard its id. */
export type Principal =
  | { readonly role: "shard"; readonly shardId: string }
  | { readonly role: Exclude<Role, "shard"> };

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** What NATS lets one principal do: subjects (with `subject queue` for a queue-group subscription). */
export interface Permissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May answer requests it received (one reply each), without publish rights on the reply subject. */
  readonly allowResponses: boolean;
}

/** The shard operations a lease's secret authorizes: all a worker may send to a shard. */
export const HOLDER_SHARD_OPS = [
  "heartbeat",
  "complete",
  "fail",
  "release",
  "settle",
] as const satisfies readonly Op[];
/** The client operations a worker sends: a lease, and what its secret authorizes (a coordinator routes them, or the granting shard takes them). */
const WORKER_OPS = ["lease", ...HOLDER_SHARD_OPS] as const satisfies readonly Op[];
/** A submitter's ops: submit, and reads (an admin alone may retry, cancel or move deadlines). */
const SUBMITTER_OPS = [
  "submit",
  "getTask",
  "stats",
  "listTasks",
  "getWorkflow",
] as const satisfies readonly Op[];

/**
 * Shard operations only shards send to each other (docs/cluster.md): a
 * slot's tasks moving, a large workflow's completion events, and an id's
 * home asking whether a claim's task is held.
 */
export const SHARD_TO_SHARD_OPS = ["adopt", "deliverEvents", "holds"] as const satisfies readonly Op[];
/** Every shard operation a coordinator may call: all but the shard-to-shard ones. */
const COORDINATOR_SHARD_OPS: readonly Op[] = OPS.filter(
  (op) => !(SHARD_TO_SHARD_OPS as readonly Op[]).includes(op),
);

/**
 * `_INBOX.<cluster>.<role>` (`_INBOX.<cluster>.shard.<id>` for a shard):
 * where a principal's replies arrive, and all it may subscribe to besides
 * its role's own subjects. Processes of one role share it: they are one
 * principal to NATS (give each worker fleet its own cluster credentials
 * directory — or its own user — to keep fleets apart).
 */
export function inboxPrefixOf(cluster: string, principal: Principal): string {
  const s = subjectsFor(cluster); // checks the cluster name
  return principal.role === "shard"
    ? `_INBOX.${s.cluster}.shard.${checkedShard(s, principal.shardId)}`
    : `_INBOX.${s.cluster}.${principal.role}`;
}

/** The permissions of `principal` in `cluster`. */
export function permissionsOf(cluster: string, principal: Principal): Permissions {
  const s = subjectsFor(cluster);
  const inbox = `${inboxPrefixOf(cluster, principal)}.>`;
  switch (principal.role) {
    case "shard": {
      const id = checkedShard(s, principal.shardId);
      return {
        publish: [
          s.frontier,
          ...SHARD_TO_SHARD_OPS.map((op) => s.anyShard(op)),
          ...bucketRead(s.slotBucket),
          ...bucketWrite(s.slotBucket),
          ...journalStream(s, id),
        ],
        subscribe: [s.shardAll(id), s.frontier, s.journalTaken(id), inbox],
        allowResponses: true,
      };
    }
    case "coordinator":
      return {
        // Reads the schedules (and submits their ticks through itself).
        publish: [
          ...COORDINATOR_SHARD_OPS.map((op) => s.anyShard(op)),
          ...bucketRead(s.slotBucket),
          ...bucketRead(scheduleBucketName(cluster)),
        ],
        subscribe: [`${s.coordAll} ${COORDINATOR_QUEUE}`, s.frontier, inbox],
        allowResponses: true,
      };
    case "worker":
      return {
        publish: [...WORKER_OPS.map((op) => s.coord(op)), ...HOLDER_SHARD_OPS.map((op) => s.anyShard(op))],
        subscribe: [inbox],
        allowResponses: false,
      };
    case "submitter":
      return {
        // A submit whose tasks live on one shard may go straight there, by the slot table.
        publish: [
          ...SUBMITTER_OPS.map((op) => s.coord(op)),
          s.anyShard("submit"),
          ...bucketRead(s.slotBucket),
        ],
        subscribe: [inbox],
        allowResponses: false,
      };
    case "admin":
      return {
        // Also writes the schedules bucket (frontier schedule), which only admins and nobody else may.
        publish: [
          s.coordAll,
          ...HOLDER_SHARD_OPS.map((op) => s.anyShard(op)),
          s.anyShard("submit"),
          ...bucketRead(s.slotBucket),
          ...bucketRead(scheduleBucketName(cluster)),
          ...bucketWrite(scheduleBucketName(cluster)),
        ],
        subscribe: [inbox],
        allowResponses: false,
      };
  }
}

/** A principal's name in files and messages: `shard.<id>` or the role. */
export function principalName(principal: Principal): string {
  return principal.role === "shard" ? `shard.${principal.shardId}` : principal.role;
}

/**
 * The JetStream API calls that open and watch a KV bucket (stream info,
 * ordered consumers for `watch` and `keys`, direct gets, flow control), and
 * nothing that changes it.
 */
function bucketRead(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.FC.${stream}.>`,
  ];
}

/**
 * A shard's own journal stream (journal shipping, docs/cluster.md "Standby
 * shards"), and no other shard's: publishing its blocks, creating the
 * stream, reading it (its last message; an ordered consumer, which a
 * standby of the shard follows under the shard's own key) and purging what
 * a new base made useless. Deleting or reconfiguring it: nobody's.
 */
function journalStream(s: ClusterSubjects, shardId: string): string[] {
  const stream = s.journalStream(shardId);
  return [
    s.journal(shardId),
    s.journalTaken(shardId),
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.PURGE.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Creating the bucket and writing its keys: a shard's alone. */
function bucketWrite(bucket: string): string[] {
  return [`$JS.API.STREAM.CREATE.${`KV_${bucket}`}`, `$KV.${bucket}.>`];
}

function checkedShard(s: ClusterSubjects, shardId: string): string {
  s.shardAll(shardId); // throws InvalidArgumentError for an id that is not a subject token
  return shardId;
}
