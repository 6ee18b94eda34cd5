/**
 * @frontier/nats-server — where the nats-server binary is. A production
 * package of its own, below both the CLI (`frontier start` runs a NATS child
 * when none answers) and @frontier/nats-testing (which starts servers for
 * tests), so neither depends on the other.
 */
export {
  DEFAULT_NATS_SERVER_LOCATIONS,
  type FindNatsServerOptions,
  findNatsServer,
  isExecutableFile,
  NATS_SERVER_BIN_ENV,
} from "./find.js";
