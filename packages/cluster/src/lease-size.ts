/**
 * How many bytes a lease may take on the wire, counted without encoding it.
 *
 * A shard fills a lease reply up to the wire's message limit, so it sizes
 * each grant before making it. Encoding the lease to measure it cost more
 * than the grant itself (the task's whole view built, then its payload
 * encoded a second time; docs/benchmarks.md, "Session 12"). The
 * bound here adds up the msgpack encoding's largest case for every field
 * (the protocol's plain maps, no records) from lengths the shard already
 * holds; the payload counts as the bytes measured when it was submitted,
 * which is the same encoding.
 */
import type { Task } from "@frontier/core";
import { LEASE_SECRET_LENGTH } from "@frontier/protocol";

/** A string's encoded bytes at most: a str32 header, and 3 UTF-8 bytes per UTF-16 unit (a surrogate pair: 4 ≤ 6). */
function stringBound(s: string): number {
  return 5 + 3 * s.length;
}

/** A key's bytes: a fixstr header and its ASCII name. */
function keyBytes(name: string): number {
  return 1 + name.length;
}

/** A number's encoded bytes at most (a float64 or a 64-bit integer). */
const NUMBER = 9;
/** A map's or an array's header at most. */
const HEADER = 5;

/** The lease's fields other than its task's variable ones: keys, numbers, the secret, the owner's header. */
const LEASE_FIXED =
  HEADER +
  keyBytes("taskId") +
  keyBytes("owner") +
  keyBytes("token") +
  NUMBER +
  keyBytes("secret") +
  5 +
  LEASE_SECRET_LENGTH +
  keyBytes("expiresAt") +
  NUMBER +
  keyBytes("attempt") +
  NUMBER +
  keyBytes("task") +
  HEADER +
  keyBytes("id") +
  keyBytes("deadline") +
  NUMBER +
  keyBytes("prerequisites") +
  HEADER;

/**
 * An upper bound of the encoded bytes of a lease of `task` held by `owner`,
 * its secret included (the prerequisites' results are not: see
 * `Shard.prerequisiteResults`). `payloadBytes` is the payload's encoding as
 * measured at submit (the engine's `leaseTask`).
 */
export function leaseSizeBound(task: Task, payloadBytes: number, owner: string): number {
  let bytes = LEASE_FIXED + 2 * stringBound(task.id) + stringBound(owner);
  for (const p of task.prerequisites) bytes += stringBound(p);
  if (task.workflowId !== undefined) bytes += keyBytes("workflowId") + stringBound(task.workflowId);
  if (task.large === true) bytes += keyBytes("large") + 1;
  if (task.payload !== undefined) bytes += keyBytes("payload") + payloadBytes;
  if (task.type !== undefined) bytes += keyBytes("type") + stringBound(task.type);
  if (task.timeoutMs !== undefined) bytes += keyBytes("timeoutMs") + NUMBER;
  return bytes;
}
