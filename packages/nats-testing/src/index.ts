/**
 * @frontier/nats-testing — starts real nats-server processes for tests (and
 * for the CLI, which reuses `findNatsServer` / `startNatsServer` to run a NATS
 * child when none is running). This file is the package's whole public face.
 */
export { NatsHarnessError, NatsHarnessErrorCode } from "./errors.js";
export {
  DEFAULT_NATS_SERVER_LOCATIONS,
  type FindNatsServerOptions,
  findNatsServer,
  NATS_SERVER_BIN_ENV,
} from "./find.js";
export {
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  NATS_TEST_HOST,
  type NatsServer,
  type NatsServerOptions,
  type RestartOptions,
  startNatsServer,
} from "./server.js";
