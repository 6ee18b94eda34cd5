/**
 * Third-party modules the end-to-end tests (test/e2e) need. A bare import
 * resolves from the importing file's package, and the repository root does
 * not depend on these; this package does, so the tests import them here.
 */
export { connect as natsConnect } from "@nats-io/transport-node";
export { default as pino } from "pino";
