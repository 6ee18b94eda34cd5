/**
 * The web console of a CLI process: `frontier start` serves it beside the
 * cluster (on by default; `--no-console` turns it off), `frontier console`
 * serves it alone. It calls the cluster through its own SDK client, as the
 * admin role when a credentials directory is in use (docs/console.md). When
 * the default port is taken it serves on a free one and says so; a port
 * asked for that is taken is an error.
 */
import { connect, type FrontierClient, type NatsAccess } from "@frontier/client";
import { type ConsoleServer, startConsole } from "@frontier/console";
import { DEFAULT_CONSOLE_HOST, DEFAULT_CONSOLE_PORT } from "@frontier/console/defaults";
import { type Logger, pino } from "pino";
import { flag, int, str } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { CliError, ExitCode, usageError } from "./errors.js";
import { println } from "./io.js";

export interface ConsoleFlags {
  readonly port: number;
  readonly host: string;
  /** Whether --console-port was given (then a taken port is an error). */
  readonly chosen: boolean;
}

/** The console's port and host from the flags, or null with --no-console. */
export function consoleFlagsOf(ctx: CommandContext): ConsoleFlags | null {
  const port = int(ctx.command, ctx.parsed, "console-port", { min: 0, max: 65_535 });
  const host = str(ctx.parsed, "console-host");
  if (flag(ctx.parsed, "no-console")) {
    if (port !== undefined || host !== undefined) {
      throw usageError(
        `${ctx.command}: --no-console turns the console off; drop --console-port and --console-host`,
      );
    }
    return null;
  }
  return {
    port: port ?? DEFAULT_CONSOLE_PORT,
    host: host ?? DEFAULT_CONSOLE_HOST,
    chosen: port !== undefined,
  };
}

/**
 * Who the console's client is: "admin" with a credentials directory (the
 * only role it takes actions with), "open" when NATS holds nobody to a role
 * (no credentials at all: every connection may do everything), else null —
 * other credentials, whose permissions the console cannot know: read-only.
 */
export function consoleRole(credentialsRole: string | undefined, access: NatsAccess): string | null {
  if (credentialsRole !== undefined) return credentialsRole;
  const credentials = [access.user, access.token, access.nkeySeedFile, access.credsFile];
  return credentials.every((c) => c === undefined) ? "open" : null;
}

export interface RunningConsole {
  readonly server: ConsoleServer;
  close(): Promise<void>;
}

/** Connect the console's client and serve the console; both closed by `close`. */
export async function serveConsole(
  ctx: CommandContext,
  flags: ConsoleFlags,
  target: {
    readonly natsUrl: string;
    readonly cluster: string;
    readonly access: NatsAccess;
    readonly role: string | null;
  },
): Promise<RunningConsole> {
  const client: FrontierClient = await connect({
    ...target.access,
    servers: target.natsUrl.split(","),
    cluster: target.cluster,
  });
  let server: ConsoleServer;
  try {
    server = await startConsole({
      client,
      role: target.role,
      actions: target.role === "admin" || target.role === "open",
      port: flags.port,
      host: flags.host,
      anyPortIfTaken: !flags.chosen,
      logger: auditLogger(),
    });
  } catch (cause) {
    await client.close();
    throw new CliError(
      `${ctx.command}: cannot serve the console on ${flags.host}:${flags.port}: ${
        cause instanceof Error ? cause.message : String(cause)
      }; choose another --console-port, or --no-console`,
      ExitCode.FAILED,
      { cause },
    );
  }
  if (server.movedFromTakenPort && !flag(ctx.parsed, "json")) {
    println(
      ctx.io.stderr,
      `frontier ${ctx.command}: console port ${flags.port} is taken; serving the console on ${server.url} instead`,
    );
  }
  if (server.frontEndMissing !== null)
    println(ctx.io.stderr, `frontier ${ctx.command}: ${server.frontEndMissing}`);
  return {
    server,
    close: async () => {
      await server.close();
      await client.close();
    },
  };
}

/** Audit lines (one per action) are written whatever --log-level says: JSON on stdout, as the other logs. */
function auditLogger(): Logger {
  return pino({ name: "frontier-console", level: "info" });
}
