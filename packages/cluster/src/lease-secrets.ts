/**
 * Lease secrets: the proof a worker shows to heartbeat, complete or fail.
 *
 * A fencing token orders leases and is no secret (getTask shows it, and
 * tokens count up per shard), so on the network it cannot be what
 * authorizes a lease's holder. A lease's secret is a keyed hash of its task
 * and token under this shard's key: HMAC-SHA256, cut to 128 bits (the first one cleared), base64url
 * (LEASE_SECRET_LENGTH characters). It is sent only in the grant (a lease or
 * settle reply), never stored, logged or shown, and a shard takes a lease
 * call only with the secret of the lease it names.
 *
 * Being derived, not drawn, a secret needs no storage: a grant replayed
 * after a lost reply or a restart carries the same secret, and the journal
 * is unchanged. The key is 32 random bytes in the shard's data directory
 * (`lease-secret.key`, mode 0600), made when the shard first starts and
 * written atomically (a temporary file, fsync, rename, fsync of the
 * directory). If it is lost, secrets of leases granted before no longer
 * match: their holders' calls are refused as stale and the tasks run again
 * when the leases expire, as after a worker's crash.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileDurably } from "./durable-file.js";

/** The key file, in the shard's data directory. */
export const LEASE_SECRET_KEY_FILE = "lease-secret.key";
const KEY_BYTES = 32;
/** Bytes of the HMAC kept: 16 bytes are 22 base64url characters (the protocol's LEASE_SECRET_LENGTH). */
const SECRET_BYTES = 16;

export class LeaseSecrets {
  private constructor(private readonly key: Buffer) {}

  /** The shard's key from `dataDir`, made there first if it has none. */
  static load(dataDir: string): LeaseSecrets {
    const path = join(dataDir, LEASE_SECRET_KEY_FILE);
    try {
      const key = readFileSync(path);
      if (key.length !== KEY_BYTES)
        throw new Error(`${path}: ${key.length} bytes, expected ${KEY_BYTES}; restore it or remove it`);
      return new LeaseSecrets(key);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const key = randomBytes(KEY_BYTES);
    writeFileDurably(dataDir, LEASE_SECRET_KEY_FILE, key, 0o600);
    return new LeaseSecrets(key);
  }

  /**
   * The key itself: for journal shipping only (journal-stream.ts), which
   * hands it to the shard's standby through the shard's own stream, so that
   * leases granted here keep their secrets after a takeover.
   */
  exportKey(): Uint8Array {
    return Uint8Array.from(this.key);
  }

  /** Writes `key` as the key of `dataDir` (a standby's copy, journal-follower.ts). */
  static install(dataDir: string, key: Uint8Array): void {
    if (key.length !== KEY_BYTES) throw new Error(`a lease secret key is ${KEY_BYTES} bytes`);
    writeFileDurably(dataDir, LEASE_SECRET_KEY_FILE, Buffer.from(key), 0o600);
  }

  /** For tests: secrets under a given key. */
  static withKey(key: Uint8Array): LeaseSecrets {
    if (key.length !== KEY_BYTES) throw new Error(`a lease secret key is ${KEY_BYTES} bytes`);
    return new LeaseSecrets(Buffer.from(key));
  }

  /** The secret of the lease of `taskId` under `token`. */
  of(taskId: string, token: number): string {
    return this.mac(taskId, token).toString("base64url");
  }

  /** Whether `secret` is the secret of the lease of `taskId` under `token` (in constant time). */
  matches(taskId: string, token: number, secret: string): boolean {
    const given = Buffer.from(secret, "base64url");
    const expected = this.mac(taskId, token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private mac(taskId: string, token: number): Buffer {
    const mac = createHmac("sha256", this.key)
      .update(`${token}:${taskId}`)
      .digest()
      .subarray(0, SECRET_BYTES);
    // The first character then never is "-" (nor "_"): a secret that began with a dash would read
    // as an option on a command line (`frontier complete ID --secret -x…`). 127 bits are left.
    mac[0] = mac[0]! & 0x7f;
    return mac;
  }
}
