export { type NatsAccess, NatsAccessError, type NatsTls, natsConnectionOptions } from "./nats-access.js";
