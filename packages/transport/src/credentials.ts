/**
 * A cluster's credentials directory: one nkey seed per principal and the
 * NATS `authorization` block that admits them, each to its role.
 *
 *   <dir>/coordinator.nk  worker.nk  submitter.nk  admin.nk
 *   <dir>/shards/<shard id>.nk
 *   <dir>/auth.conf       public keys and permissions (nats-server -c auth.conf)
 *
 * Seeds are made once (mode 0600, written atomically, in a 0700 directory)
 * and kept: a restart, or a shard added later, reuses what is there, and
 * auth.conf is written again for the principals asked for. A process is
 * handed only its own seed file (`accessOf`); on one machine `frontier
 * start` hands each part its own, on several hosts each host gets only the
 * files of what it runs.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { type NatsAccess, NatsAccessError } from "./nats-access.js";
import { inboxPrefixOf, type Principal, principalName } from "./roles.js";
import { authorizationConfig, type NkeyUser } from "./server-config.js";

/** The file of the NATS authorization block in a credentials directory. */
export const AUTH_CONFIG_FILE = "auth.conf";

/** The seed file of `principal` in `dir`. */
export function seedFileOf(dir: string, principal: Principal): string {
  return principal.role === "shard"
    ? join(dir, "shards", `${principal.shardId}.nk`)
    : join(dir, `${principal.role}.nk`);
}

/** The principals of a cluster with these shards: one per role, one per shard id. */
export function clusterPrincipals(shardIds: readonly string[]): Principal[] {
  return [
    { role: "coordinator" },
    { role: "worker" },
    { role: "submitter" },
    { role: "admin" },
    ...shardIds.map((shardId): Principal => ({ role: "shard", shardId })),
  ];
}

export interface ClusterCredentials {
  readonly dir: string;
  /** `<dir>/auth.conf`. */
  readonly authConfigFile: string;
  readonly users: readonly NkeyUser[];
  /** Seeds made now (the rest were there). */
  readonly created: readonly Principal[];
}

/**
 * Makes the seeds of `principals` that `dir` lacks and writes `auth.conf`
 * admitting all of them to `cluster`. A seed file that is there but is not
 * a user seed is an error (NatsAccessError naming the file), not replaced.
 */
export function ensureCredentials(
  dir: string,
  cluster: string,
  principals: readonly Principal[],
): ClusterCredentials {
  mkdirSync(join(dir, "shards"), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const created: Principal[] = [];
  const users = principals.map((principal): NkeyUser => {
    const file = seedFileOf(dir, principal);
    if (!existsSync(file)) {
      const user = createUser();
      writeAtomically(file, `${new TextDecoder().decode(user.getSeed())}\n`, 0o600);
      created.push(principal);
    }
    return { principal, publicKey: publicKeyOf(file) };
  });
  const authConfigFile = join(dir, AUTH_CONFIG_FILE);
  writeAtomically(authConfigFile, authorizationConfig(cluster, users), 0o644);
  return { dir, authConfigFile, users, created };
}

/**
 * How `principal` reaches NATS with the credentials in `dir`: its seed file
 * and its inbox prefix. NatsAccessError when the seed is not there.
 */
export function accessOf(dir: string, cluster: string, principal: Principal): NatsAccess {
  const nkeySeedFile = seedFileOf(dir, principal);
  if (!existsSync(nkeySeedFile)) {
    throw new NatsAccessError(
      `the credentials directory ${JSON.stringify(dir)} holds no seed for ${principalName(principal)} (${JSON.stringify(nkeySeedFile)})`,
    );
  }
  return { nkeySeedFile, inboxPrefix: inboxPrefixOf(cluster, principal) };
}

/** The public key of the user seed in `file`. */
function publicKeyOf(file: string): string {
  const seed = readFileSync(file, "utf8").trim();
  try {
    const pair = fromSeed(new TextEncoder().encode(seed));
    const publicKey = pair.getPublicKey();
    if (!publicKey.startsWith("U")) throw new Error("not a user seed");
    return publicKey;
  } catch {
    throw new NatsAccessError(`${JSON.stringify(file)} does not hold an nkey user seed (SU…)`);
  }
}

function writeAtomically(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  chmodSync(temp, mode); // the umask may have narrowed or widened nothing; be exact
  renameSync(temp, file);
}
