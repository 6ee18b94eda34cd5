/**
 * Command-line parsing: node:util's parseArgs (strict) per command, with the
 * options every command shares, and checked conversions that name the option
 * in their error. A parse error is a usage error (exit 2).
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_CLUSTER, DEFAULT_NATS_URL } from "@frontier/client";
import { isTaskType, MAX_TASK_TYPE_LENGTH } from "@frontier/core";
import { isValidToken, MAX_LEASE_TYPES, redactUrl } from "@frontier/protocol";
import {
  AUTH_CONFIG_FILE,
  accessOf,
  isRole,
  type NatsAccess,
  NatsAccessError,
  natsConnectionOptions,
  type Principal,
  ROLES,
  type Role,
} from "@frontier/transport";
import { usageError } from "./errors.js";
import { type Io, userPath } from "./io.js";

/** Environment variables that set --nats and --cluster when the flags are absent. */
export const NATS_URL_ENV = "FRONTIER_NATS_URL";
export const CLUSTER_ENV = "FRONTIER_CLUSTER";
/** Environment variable that sets --credentials when the flag is absent. */
export const CREDENTIALS_ENV = "FRONTIER_CREDENTIALS";
/**
 * Where a client command finds credentials when told of none: the directory
 * `frontier start` makes under its default data directory (`.frontier`), in
 * the working directory. Kept here, not imported from the service options,
 * so that client commands do not load the service's modules.
 */
export const IMPLICIT_CREDENTIALS_DIR = ".frontier/credentials";

export interface OptionSpec {
  readonly type: "string" | "boolean";
  /** A string option that may be given more than once (its values are read with `strings`). */
  readonly multiple?: boolean;
  readonly short?: string;
  /** Shown in help: `--max N`. */
  readonly value?: string;
  readonly description: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The options every command takes. */
export const COMMON_OPTIONS = {
  nats: {
    type: "string",
    value: "URL",
    description: `NATS server (default $${NATS_URL_ENV} or ${DEFAULT_NATS_URL})`,
  },
  cluster: {
    type: "string",
    value: "NAME",
    description: `cluster name (default $${CLUSTER_ENV} or ${JSON.stringify(DEFAULT_CLUSTER)})`,
  },
  credentials: {
    type: "string",
    value: "DIR",
    description: `credentials directory made by \`frontier start\` or \`frontier credentials\`: connect as this command's role (default $${CREDENTIALS_ENV}; a client command also finds ${IMPLICIT_CREDENTIALS_DIR} when given no other credentials)`,
  },
  role: {
    type: "string",
    value: "ROLE",
    description: `with a credentials directory, connect as ROLE (${ROLES.filter((r) => r !== "shard").join(", ")}) instead of the command's own`,
  },
  "nats-user": { type: "string", value: "USER", description: "NATS user (default $FRONTIER_NATS_USER)" },
  "nats-password-file": {
    type: "string",
    value: "FILE",
    description:
      "file holding the NATS user's password (default $FRONTIER_NATS_PASSWORD_FILE; or $FRONTIER_NATS_PASSWORD)",
  },
  "nats-token-file": {
    type: "string",
    value: "FILE",
    description: "file holding a NATS token (default $FRONTIER_NATS_TOKEN_FILE; or $FRONTIER_NATS_TOKEN)",
  },
  "nats-nkey": {
    type: "string",
    value: "FILE",
    description: "NATS nkey seed file (default $FRONTIER_NATS_NKEY)",
  },
  "nats-creds": {
    type: "string",
    value: "FILE",
    description: "NATS creds file, JWT and seed (default $FRONTIER_NATS_CREDS)",
  },
  "nats-ca": {
    type: "string",
    value: "FILE",
    description: "CA certificates to trust for NATS TLS (default $FRONTIER_NATS_CA)",
  },
  "nats-cert": {
    type: "string",
    value: "FILE",
    description: "client certificate for NATS mutual TLS, with --nats-key (default $FRONTIER_NATS_CERT)",
  },
  "nats-key": { type: "string", value: "FILE", description: "its private key (default $FRONTIER_NATS_KEY)" },
  "nats-inbox-prefix": {
    type: "string",
    value: "PREFIX",
    description: "prefix of NATS reply subjects (default $FRONTIER_NATS_INBOX_PREFIX or _INBOX)",
  },
  json: { type: "boolean", description: "machine-readable output on stdout" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies OptionSpecs;

export interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | readonly string[] | undefined>>;
  readonly positionals: readonly string[];
}

export function parse(command: string, argv: readonly string[], options: OptionSpecs): Parsed {
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  const all: OptionSpecs = { ...COMMON_OPTIONS, ...options };
  for (const [name, spec] of Object.entries(all)) {
    config[name] = {
      type: spec.type,
      ...(spec.short === undefined ? {} : { short: spec.short }),
      ...(spec.multiple === true ? { multiple: true } : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: config,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (err) {
    const message =
      err instanceof Error ? err.message.replace(/\. To specify a positional.*$/s, "") : String(err);
    throw usageError(`${command}: ${message} (see frontier ${command} --help)`);
  }
}

export function str(parsed: Parsed, name: string): string | undefined {
  const v = parsed.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Every value of a repeatable string option, in order; empty when absent. */
export function strings(parsed: Parsed, name: string): string[] {
  const v = parsed.values[name];
  return typeof v === "string" ? [v] : Array.isArray(v) ? [...v] : [];
}

/** `--type T`, repeatable and each a comma list: what a worker leases (see typesOption). */
export const TYPE_OPTION = {
  type: {
    type: "string",
    multiple: true,
    value: "T",
    description: `lease only tasks of type T (repeatable, or a comma list: --type img,mail; 1..${MAX_LEASE_TYPES} types; default: "default", the type of tasks submitted without one)`,
  },
} as const satisfies OptionSpecs;

/**
 * The task types `--type` names (repeated, or comma lists), each checked and
 * named once; undefined when absent (the default type). A usage error names
 * the bad one.
 */
export function typesOption(command: string, parsed: Parsed): string[] | undefined {
  const given = strings(parsed, "type");
  if (given.length === 0) return undefined;
  const types: string[] = [];
  for (const part of given.flatMap((g) => g.split(","))) {
    const type = part.trim();
    if (!isTaskType(type))
      throw usageError(
        `${command}: --type ${JSON.stringify(type)} is not a task type (1..${MAX_TASK_TYPE_LENGTH} of letters, digits, "_", "." and "-")`,
      );
    if (!types.includes(type)) types.push(type);
  }
  if (types.length > MAX_LEASE_TYPES)
    throw usageError(`${command}: --type names ${types.length} types, more than ${MAX_LEASE_TYPES}`);
  return types;
}

export function flag(parsed: Parsed, name: string): boolean {
  return parsed.values[name] === true;
}

/** An integer option in [min, max], or `fallback` when absent. */
export function int(
  command: string,
  parsed: Parsed,
  name: string,
  range: { min: number; max?: number },
  fallback: number,
): number;
export function int(
  command: string,
  parsed: Parsed,
  name: string,
  range: { min: number; max?: number },
): number | undefined;
export function int(
  command: string,
  parsed: Parsed,
  name: string,
  range: { min: number; max?: number },
  fallback?: number,
): number | undefined {
  const raw = str(parsed, name);
  if (raw === undefined) return fallback;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < range.min || n > max) {
    const bound = range.max === undefined ? `≥ ${range.min}` : `in ${range.min}..${range.max}`;
    throw usageError(`${command}: --${name} must be an integer ${bound}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The role a command connects as with a credentials directory, unless --role says otherwise. */
const COMMAND_ROLES: Readonly<Record<string, Role>> = {
  start: "admin",
  shard: "shard",
  coordinator: "coordinator",
  work: "worker",
  lease: "worker",
  complete: "worker",
  fail: "worker",
  release: "worker",
  submit: "submitter",
  status: "submitter",
  list: "submitter",
  show: "submitter",
  top: "submitter",
  cancel: "admin",
  retry: "admin",
  schedule: "admin",
};

export interface Target {
  readonly natsUrl: string;
  readonly cluster: string;
  readonly access: NatsAccess;
  /** The credentials directory in use (given, or found), if any. */
  readonly credentialsDir?: string;
}

/** Where to reach the cluster, and as whom: flags, then environment, then defaults. */
export function target(command: string, parsed: Parsed, io: Pick<Io, "env" | "cwd" | "userCwd">): Target {
  const { env } = io;
  const natsUrl = str(parsed, "nats") ?? nonEmpty(env[NATS_URL_ENV]) ?? DEFAULT_NATS_URL;
  const cluster = str(parsed, "cluster") ?? nonEmpty(env[CLUSTER_ENV]) ?? DEFAULT_CLUSTER;
  if (!isValidToken(cluster)) {
    throw usageError(
      `${command}: --cluster must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(cluster)}`,
    );
  }
  checkNatsUrl(command, natsUrl);
  let access = natsAccess(command, parsed, io);
  const credentialsDir = credentialsDirOf(command, parsed, io, access);
  if (credentialsDir !== undefined) {
    const principal = principalOf(command, parsed, env);
    try {
      access = { ...access, ...accessOf(credentialsDir, cluster, principal) };
    } catch (error) {
      if (error instanceof NatsAccessError) throw usageError(`${command}: ${error.message}`);
      throw error;
    }
  }
  try {
    natsConnectionOptions(natsUrl, access);
  } catch (error) {
    if (error instanceof NatsAccessError) throw usageError(`${command}: ${error.message}`);
    throw error;
  }
  return { natsUrl, cluster, access, ...(credentialsDir === undefined ? {} : { credentialsDir }) };
}

/**
 * The credentials directory: --credentials, else $FRONTIER_CREDENTIALS, else
 * (for a client command given no other credentials or inbox prefix)
 * `.frontier/credentials` when `frontier start` made one there. With
 * another kind of credentials as well, a usage error.
 */
function credentialsDirOf(
  command: string,
  parsed: Parsed,
  io: Pick<Io, "env" | "cwd" | "userCwd">,
  access: NatsAccess,
): string | undefined {
  const given = str(parsed, "credentials") ?? nonEmpty(io.env[CREDENTIALS_ENV]);
  const others = (["user", "token", "nkeySeedFile", "credsFile", "inboxPrefix"] as const).filter(
    (k) => access[k] !== undefined,
  );
  if (given !== undefined) {
    if (others.length > 0) {
      throw usageError(
        `${command}: a credentials directory gives the NATS credentials and inbox prefix; drop the other NATS credential settings`,
      );
    }
    const dir = userPath(io, given);
    if (!existsSync(dir))
      throw usageError(`${command}: --credentials ${JSON.stringify(given)}: no such directory`);
    return dir;
  }
  const service = command === "start" || command === "shard" || command === "coordinator";
  const role = str(parsed, "role");
  // A default, not a path the user gave: where `frontier start` puts it, in the working directory.
  const implicit = resolve(io.cwd, IMPLICIT_CREDENTIALS_DIR);
  const found = !service && others.length === 0 && existsSync(resolve(implicit, AUTH_CONFIG_FILE));
  // --role picks a key in a credentials directory: without one it would silently mean nothing.
  if (role !== undefined && !found) {
    throw usageError(
      `${command}: --role ${role} needs a credentials directory: --credentials DIR, $${CREDENTIALS_ENV}, or ${IMPLICIT_CREDENTIALS_DIR} in this directory`,
    );
  }
  return found ? implicit : undefined;
}

/** Who a command connects as with a credentials directory. */
function principalOf(command: string, parsed: Parsed, env: NodeJS.ProcessEnv): Principal {
  const asked = str(parsed, "role");
  if (asked !== undefined && (!isRole(asked) || asked === "shard")) {
    throw usageError(
      `${command}: --role must be one of ${ROLES.filter((r) => r !== "shard").join(", ")}, got ${JSON.stringify(asked)}`,
    );
  }
  const role = asked ?? COMMAND_ROLES[command] ?? "admin";
  if (role === "shard") return { role, shardId: shardIdOf(parsed, env) };
  return { role };
}

/** A `frontier shard`'s id: --id, else $FRONTIER_SHARD_ID, else shard-0. */
export function shardIdOf(parsed: Parsed, env: NodeJS.ProcessEnv): string {
  return str(parsed, "id") ?? nonEmpty(env["FRONTIER_SHARD_ID"]) ?? "shard-0";
}

/**
 * The NATS credentials and TLS files the flags (or, without them, the
 * environment) name. Secrets come from files, or from the environment;
 * never from a flag, where other users of the machine could read them.
 */
function natsAccess(command: string, parsed: Parsed, io: Pick<Io, "env" | "cwd" | "userCwd">): NatsAccess {
  const { env } = io;
  const opt = (flag: string, envName: string) => str(parsed, flag) ?? nonEmpty(env[envName]);
  // Paths of files the user named: made absolute here, as the transport reads them later.
  const file = (flag: string, envName: string) => {
    const path = opt(flag, envName);
    return path === undefined ? undefined : userPath(io, path);
  };
  const secret = (flag: string, fileEnv: string, valueEnv: string): string | undefined => {
    const path = opt(flag, fileEnv);
    if (path === undefined) return nonEmpty(env[valueEnv]);
    try {
      return readFileSync(userPath(io, path), "utf8").trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw usageError(`${command}: cannot read --${flag} ${JSON.stringify(path)} (${code})`);
    }
  };
  const user = opt("nats-user", "FRONTIER_NATS_USER");
  const pass = secret("nats-password-file", "FRONTIER_NATS_PASSWORD_FILE", "FRONTIER_NATS_PASSWORD");
  const token = secret("nats-token-file", "FRONTIER_NATS_TOKEN_FILE", "FRONTIER_NATS_TOKEN");
  const nkeySeedFile = file("nats-nkey", "FRONTIER_NATS_NKEY");
  const credsFile = file("nats-creds", "FRONTIER_NATS_CREDS");
  const caFile = file("nats-ca", "FRONTIER_NATS_CA");
  const certFile = file("nats-cert", "FRONTIER_NATS_CERT");
  const keyFile = file("nats-key", "FRONTIER_NATS_KEY");
  const inboxPrefix = opt("nats-inbox-prefix", "FRONTIER_NATS_INBOX_PREFIX");
  const tls =
    caFile === undefined && certFile === undefined && keyFile === undefined
      ? undefined
      : {
          ...(caFile === undefined ? {} : { caFile }),
          ...(certFile === undefined ? {} : { certFile }),
          ...(keyFile === undefined ? {} : { keyFile }),
        };
  return {
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(token === undefined ? {} : { token }),
    ...(nkeySeedFile === undefined ? {} : { nkeySeedFile }),
    ...(credsFile === undefined ? {} : { credsFile }),
    ...(tls === undefined ? {} : { tls }),
    ...(inboxPrefix === undefined ? {} : { inboxPrefix }),
  };
}

/** Host and port of a NATS URL (`nats://host:port`, also `host:port`), or a usage error. */
export function checkNatsUrl(command: string, url: string): { host: string; port: number } {
  for (const candidate of url.split(",")) {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(candidate) ? candidate : `nats://${candidate}`;
    let parsed: URL;
    try {
      parsed = new URL(withScheme);
    } catch {
      throw usageError(
        `${command}: --nats must be a URL like nats://127.0.0.1:4222, got ${JSON.stringify(redactUrl(url))}`,
      );
    }
    if (parsed.hostname === "") {
      throw usageError(`${command}: --nats must name a host, got ${JSON.stringify(redactUrl(url))}`);
    }
  }
  const first = url.split(",")[0] ?? url;
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(first) ? first : `nats://${first}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port === "" ? 4222 : Number(u.port) };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

/** `--name VALUE` lines for help, aligned. */
export function optionHelp(options: OptionSpecs): string {
  const rows = Object.entries(options).map(([name, spec]) => {
    const short = spec.short === undefined ? "    " : `-${spec.short}, `;
    return [
      `${short}--${name}${spec.value === undefined ? "" : ` ${spec.value}`}`,
      spec.description,
    ] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join("\n");
}
