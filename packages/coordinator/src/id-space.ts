/**
 * The cluster's id space as a coordinator follows it (@frontier/protocol
 * id-space.ts): read from the slot bucket, where the cluster's first shard
 * wrote it, once; until it is there (no shard started yet, or a cluster
 * from before the key), the default, "cluster".
 *
 * What it decides here is only what a submit and a bare-id request cost:
 * in a cluster whose ids are unique per shard ("workflow"), shards ignore
 * claims and answer `locate` with none, so a coordinator that still sends
 * them is correct, only slower; one that knows sends none and asks every
 * shard where a task named by id alone is.
 */
import { DEFAULT_ID_SPACE, ID_SPACE_KEY, type IdSpace, isIdSpace, slotBucketName } from "@frontier/protocol";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";

/** How often the key is looked for until it is there, ms. */
const READ_EVERY_MS = 1_000;

export class IdSpaceReader {
  private known: IdSpace | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly logger: Logger,
  ) {}

  /** The cluster's id space, or the default while it is not known yet. */
  get current(): IdSpace {
    return this.known ?? DEFAULT_ID_SPACE;
  }

  /** Looks for the key now and, until found, every READ_EVERY_MS, in the background. */
  start(): void {
    void this.read();
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async read(): Promise<void> {
    if (this.stopped) return;
    try {
      const kv = await new Kvm(this.nc).open(slotBucketName(this.cluster));
      const entry = await kv.get(ID_SPACE_KEY);
      const value = entry?.operation === "PUT" ? entry.string() : undefined;
      if (isIdSpace(value)) {
        this.known = value;
        this.logger.info({ idSpace: value }, "task ids are unique per %s", value);
        return;
      }
      if (value !== undefined)
        this.logger.warn({ value }, "the cluster's id space is not one this coordinator knows");
    } catch (error) {
      this.logger.debug({ err: error }, "the cluster's id space is not readable yet");
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.read(), READ_EVERY_MS).unref();
  }
}
