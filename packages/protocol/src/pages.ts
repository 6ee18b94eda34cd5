/**
 * The page budget of listTasks and getWorkflow, kept by each sender of a
 * page (a shard, then a coordinator merging shards' pages) the same way.
 */
import { encodedByteLength } from "./codec.js";
import { LIST_PAGE_BYTES } from "./limits.js";

/**
 * The first items whose encoded sizes add up to at most LIST_PAGE_BYTES,
 * and always the first item (one task at every limit fits in a message).
 * O(bytes of the items kept).
 */
export function withinListBudget<T>(items: readonly T[]): T[] {
  let bytes = 0;
  const kept: T[] = [];
  for (const item of items) {
    bytes += encodedByteLength(item);
    if (bytes > LIST_PAGE_BYTES && kept.length > 0) break;
    kept.push(item);
  }
  return kept;
}
