/**
 * The shards a unit test opens: fresh data directories under one temporary
 * root, every shard opened through `openShard` closed after each test, and
 * the root removed after the file. Call `useShards` at the top of a test
 * file (it registers the hooks).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach } from "vitest";
import { Shard, type ShardOptions } from "./shard.js";

export interface TestShards {
  /** A data directory no other test of the file uses (not created yet). */
  freshDir(): string;
  /** Opens a shard, closed after the test. */
  openShard(options: ShardOptions): Promise<Shard>;
  /** Closes a shard opened here before the test ends (a restart). */
  closeShard(shard: Shard): Promise<void>;
}

export function useShards(prefix: string): TestShards {
  const root = mkdtempSync(join(tmpdir(), `frontier-${prefix}-`));
  let dirs = 0;
  const open: Shard[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return {
    freshDir: () => join(root, `s${dirs++}`),
    async openShard(options) {
      const shard = await Shard.open(options);
      open.push(shard);
      return shard;
    },
    async closeShard(shard) {
      const at = open.indexOf(shard);
      if (at >= 0) open.splice(at, 1);
      await shard.close();
    },
  };
}
