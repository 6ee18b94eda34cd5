/**
 * @frontier/console — the web console: the front end (built by Vite into
 * dist/web) and the server that serves it with a JSON API over the SDK
 * (docs/console.md). This file is the package's whole public face.
 */
export { ACTIONS, type ActionName, type ActionReply } from "./actions.js";
export type { StatsReply, TaskPageReply, TaskReply, WorkflowPageReply } from "./api.js";
export { DEFAULT_CONSOLE_HOST, DEFAULT_CONSOLE_PORT, MAX_PAGE_LIMIT } from "./defaults.js";
export { CSRF_HEADER } from "./request-guard.js";
export { type ConsoleOptions, type ConsoleServer, startConsole } from "./server.js";
