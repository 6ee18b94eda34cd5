/** `frontier console`: the web console alone, against a running cluster (docs/console.md). */
import { redactUrl } from "@frontier/protocol";
import { flag, str, target } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { consoleFlagsOf, consoleRole, serveConsole } from "./console-serve.js";
import { usageError } from "./errors.js";
import { println } from "./io.js";

export async function consoleCommand(ctx: CommandContext): Promise<void> {
  if (ctx.parsed.positionals.length > 0) {
    throw usageError(`${ctx.command}: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  }
  const { natsUrl, cluster, access, credentialsDir } = target(ctx.command, ctx.parsed, ctx.io);
  const flags = consoleFlagsOf(ctx);
  if (flags === null) throw usageError(`${ctx.command}: --no-console leaves nothing to run`);
  const role = consoleRole(
    credentialsDir === undefined ? undefined : (str(ctx.parsed, "role") ?? "admin"),
    access,
  );
  const running = await serveConsole(ctx, flags, { natsUrl, cluster, access, role });
  const url = running.server.url;
  println(
    ctx.io.stdout,
    flag(ctx.parsed, "json")
      ? JSON.stringify({
          event: "listening",
          role: "console",
          cluster,
          nats: redactUrl(natsUrl),
          console: url,
        })
      : `frontier: console of cluster ${JSON.stringify(cluster)} on ${url} (as ${role ?? "a role it cannot tell: read-only"}); press Ctrl-C to stop`,
  );
  await new Promise<void>((resolveStop) => {
    const off = ctx.io.onSignal(() => {
      off();
      resolveStop();
    });
  });
  await running.close();
}
