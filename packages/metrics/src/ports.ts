/**
 * Where each kind of Frontier process serves its metrics and health
 * endpoints when told nothing. One port per kind, so that one host can run
 * one of each side by side and a Prometheus scrape config can name them.
 *
 *   frontier start        9464  (coordinator and shards of the process, one endpoint)
 *   frontier coordinator  9465
 *   frontier shard        9466
 *   frontier work         9467
 */
export const DEFAULT_METRICS_PORTS = {
  start: 9464,
  coordinator: 9465,
  shard: 9466,
  work: 9467,
} as const;

export type ProcessKind = keyof typeof DEFAULT_METRICS_PORTS;

/** Interface the endpoint binds when told nothing: this host only (0.0.0.0 in a container). */
export const DEFAULT_METRICS_HOST = "127.0.0.1";
