/**
 * Which shard owns each slot, as the coordinator routes by it: the cluster's
 * slot directory, whose contract (bucket, keys, owner values) and one
 * watcher (`SlotMap`) live in @frontier/transport, shared with the shards.
 *
 * `SlotDirectory` is the narrow view the routers use, so a fixed table can
 * stand in for the watcher (the `slots` option).
 */

/** The KV bucket holding a cluster's slot owners: the one name, from @frontier/protocol. */
export { slotBucketName } from "@frontier/protocol";
export { type SlotDirectory, SlotMap, slotOfKey } from "@frontier/transport";
