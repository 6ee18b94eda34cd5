/**
 * A NATS cluster of real nats-server processes on loopback, JetStream on in
 * each: what a stream or a bucket with more than one replica needs (a single
 * server refuses `num_replicas` > 1). Each node is a `startNatsServer` with
 * its own name, store and route port, routed to every other node.
 */
import { createServer } from "node:net";
import { NatsHarnessError, NatsHarnessErrorCode } from "./errors.js";
import { NATS_TEST_HOST, type NatsServer, startNatsServer } from "./server.js";

export interface NatsClusterOptions {
  /** Nodes; at least 2 (default 3: JetStream's usual replica count). */
  readonly size?: number;
  /** Echo the servers' output to stderr. Default false. */
  readonly debug?: boolean;
  /** How long the nodes may take to elect JetStream's meta leader, ms. Default META_LEADER_TIMEOUT_MS. */
  readonly startTimeoutMs?: number;
}

/** Routes up and JetStream's meta leader elected, by then (ms): a few seconds on a quiet machine. */
export const META_LEADER_TIMEOUT_MS = 30_000;

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every node's client URL: what a client connects with. */
  readonly urls: readonly string[];
  /** Stops every node and removes their stores. Idempotent. */
  stop(): Promise<void>;
}

/** A free TCP port on loopback, as the OS hands one out (routes need their ports known up front). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, NATS_TEST_HOST, () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/**
 * Waits until every node has logged JetStream's meta leader (the leader
 * logs itself as "Self is new JetStream cluster metadata leader", the
 * others the leader's name): before that, a JetStream call times out.
 */
async function untilMetaLeader(servers: readonly NatsServer[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!servers.every((s) => /JetStream cluster (new )?metadata leader/.test(s.log()))) {
    if (Date.now() > deadline) {
      throw new NatsHarnessError(
        NatsHarnessErrorCode.START_TIMEOUT,
        `the NATS cluster elected no JetStream meta leader within ${timeoutMs} ms\n` +
          servers.map((s) => `${s.url}:\n${s.log().trimEnd().split("\n").slice(-5).join("\n")}`).join("\n"),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts `size` routed nodes and resolves once each accepts clients and
 * JetStream's meta leader is elected (a JetStream call works at once).
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 2 || size > 9) {
    throw new NatsHarnessError(
      NatsHarnessErrorCode.INVALID_OPTION,
      `startNatsCluster: option size must be an integer in 2..9, got ${size}`,
    );
  }
  // The route ports are picked before the nodes start, so another process (or a node's own
  // client port, which nats-server picks itself) can take one first: then start again on fresh ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRoutedNodes(size, options);
    } catch (error) {
      if (attempt >= BIND_ATTEMPTS || !String((error as Error)?.message).includes("address already in use"))
        throw error;
    }
  }
}

/** Starts of a cluster, each on fresh route ports, before a port taken first fails it. */
const BIND_ATTEMPTS = 3;

async function startRoutedNodes(size: number, options: NatsClusterOptions): Promise<NatsCluster> {
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const routes = routePorts.map((p) => `nats://${NATS_TEST_HOST}:${p}`).join(",");
  // Every node that started, for the clean-up of a failed start.
  const up: NatsServer[] = [];
  const stopAll = async () => {
    await Promise.all(up.map((s) => s.stop()));
  };
  let servers: NatsServer[];
  let started: Promise<NatsServer>[] = [];
  try {
    started = routePorts.map((port, i) =>
      startNatsServer({
        debug: options.debug ?? false,
        args: [
          "--server_name",
          `node-${i}`,
          "--cluster_name",
          "frontier-test",
          "--cluster",
          `nats://${NATS_TEST_HOST}:${port}`,
          "--routes",
          routes,
        ],
      }).then((server) => {
        up.push(server);
        return server;
      }),
    );
    servers = await Promise.all(started);
    await untilMetaLeader(servers, options.startTimeoutMs ?? META_LEADER_TIMEOUT_MS);
  } catch (error) {
    await Promise.allSettled(started);
    await stopAll();
    throw error;
  }
  return { servers, urls: servers.map((s) => s.url), stop: stopAll };
}
