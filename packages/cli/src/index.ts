/**
 * @frontier/cli — the `frontier` command. The executable is bin.ts; this
 * entry lets tests and tools run it in-process and list its commands.
 */

export { parse as parseCommandLine } from "./args.js";
export { CliError, describeError, ExitCode } from "./errors.js";
export { type Io, processIo } from "./io.js";
export { COMMANDS, type CommandName, commandHelp, globalHelp, isCommand, main } from "./main.js";
export { WorkMetrics } from "./metrics/work-metrics.js";
export { INSTALL_NATS_HINT } from "./nats-child.js";
export { parseTasks } from "./tasks-file.js";
