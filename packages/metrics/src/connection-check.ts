/**
 * A readiness check for a NATS connection: ready while connected; not ready
 * from a `disconnect` status until the next `reconnect`, and for good once
 * the connection is closed. Takes the connection by the two members it
 * reads, so this package needs no NATS client of its own.
 */
import type { ReadinessCheck } from "./endpoint.js";

export interface WatchedConnection {
  isClosed(): boolean;
  status(): AsyncIterable<{ readonly type: string }>;
}

export interface ConnectionCheck {
  readonly check: ReadinessCheck;
  /** Stops following the connection's status. */
  stop(): void;
}

export function watchConnection(nc: WatchedConnection): ConnectionCheck {
  let connected = true;
  let stopped = false;
  const statuses = nc.status();
  const iterator = statuses[Symbol.asyncIterator]();
  void (async () => {
    for (;;) {
      const next = await iterator.next().catch(() => undefined);
      if (next === undefined || next.done === true || stopped) return;
      if (next.value.type === "disconnect") connected = false;
      else if (next.value.type === "reconnect") connected = true;
    }
  })();
  return {
    check: () => {
      if (nc.isClosed()) return "the NATS connection is closed";
      return connected ? null : "NATS disconnected; reconnecting";
    },
    stop: () => {
      stopped = true;
      void iterator.return?.();
    },
  };
}
