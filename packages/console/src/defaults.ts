/**
 * Where the console listens when told nothing. Apart from the server so that
 * the CLI's `--help` reads the defaults without loading the server.
 */

/** Port of the console served by `frontier start` and `frontier console` (`0`: any free port). */
export const DEFAULT_CONSOLE_PORT = 9470;
/**
 * Loopback only: the console reads every task and, with the admin role,
 * changes them; exposing it is a decision (`--console-host 0.0.0.0`).
 */
export const DEFAULT_CONSOLE_HOST = "127.0.0.1";
/** Most tasks one API page returns (the UI asks for at most this). */
export const MAX_PAGE_LIMIT = 200;
export const DEFAULT_PAGE_LIMIT = 50;
