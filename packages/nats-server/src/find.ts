/**
 * Where the nats-server binary is: an explicit path in NATS_SERVER_BIN, else
 * PATH, else the usual install locations.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Environment variable that names the binary explicitly; when set, nothing else is searched. */
export const NATS_SERVER_BIN_ENV = "NATS_SERVER_BIN";

/**
 * Where Debian's package and the usual manual installs put the binary; searched
 * after PATH because /usr/sbin is often missing from a non-root user's PATH.
 */
export const DEFAULT_NATS_SERVER_LOCATIONS: readonly string[] = [
  "/usr/sbin/nats-server",
  "/usr/local/bin/nats-server",
  "/usr/bin/nats-server",
];

export interface FindNatsServerOptions {
  /** Environment to read PATH and NATS_SERVER_BIN from. Default: `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Absolute paths tried after PATH. Default: `DEFAULT_NATS_SERVER_LOCATIONS`. */
  readonly locations?: readonly string[];
}

/**
 * The path of an executable nats-server, or null when there is none.
 * Order: $NATS_SERVER_BIN (exclusively: an explicit choice that is wrong should
 * fail loudly, not be replaced by some other binary), then PATH, then
 * `locations`. Synchronous and cheap, so the CLI can call it at startup.
 */
export function findNatsServer(options: FindNatsServerOptions = {}): string | null {
  const env = options.env ?? process.env;
  const explicit = env[NATS_SERVER_BIN_ENV];
  if (explicit !== undefined && explicit !== "") return isExecutableFile(explicit) ? explicit : null;

  const dirs = (env["PATH"] ?? "").split(delimiter).filter((d) => d !== "");
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (isExecutableFile(candidate)) return candidate;
  }
  for (const candidate of options.locations ?? DEFAULT_NATS_SERVER_LOCATIONS) {
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
