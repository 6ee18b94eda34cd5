/**
 * @frontier/nats-testing — starts real nats-server processes for tests. The
 * binary is found by @frontier/nats-server's `findNatsServer` (re-exported
 * here), which `frontier start` uses too. This file is the package's whole
 * public face.
 */

export {
  DEFAULT_NATS_SERVER_LOCATIONS,
  type FindNatsServerOptions,
  findNatsServer,
  NATS_SERVER_BIN_ENV,
} from "@frontier/nats-server";
export { type NatsCluster, type NatsClusterOptions, startNatsCluster } from "./cluster.js";
export { NatsHarnessError, NatsHarnessErrorCode } from "./errors.js";
export {
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  NATS_TEST_HOST,
  type NatsServer,
  type NatsServerOptions,
  type RestartOptions,
  startNatsServer,
} from "./server.js";
