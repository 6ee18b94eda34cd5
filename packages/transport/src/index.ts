export {
  AUTH_CONFIG_FILE,
  accessOf,
  type ClusterCredentials,
  clusterPrincipals,
  ensureCredentials,
  seedFileOf,
} from "./credentials.js";
export { type NatsAccess, NatsAccessError, type NatsTls, natsConnectionOptions } from "./nats-access.js";
export {
  HOLDER_SHARD_OPS,
  inboxPrefixOf,
  isRole,
  type Permissions,
  type Principal,
  permissionsOf,
  principalName,
  ROLES,
  type Role,
  SHARD_TO_SHARD_OPS,
} from "./roles.js";
export { authorizationConfig, type NkeyUser } from "./server-config.js";
export {
  type SlotChange,
  type SlotDirectory,
  SlotMap,
  type SlotMapLog,
  type SlotMapOptions,
  slotKey,
  slotOfKey,
  slotOwnerOf,
} from "./slot-directory.js";
