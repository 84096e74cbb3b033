// Copyright memsnap authors. MIT license.
/**
 * Applies a retention policy to a store.
 *
 * @module
 */
import type { ListFilter, PrunePlan, RetentionPolicy, SnapshotInfo, Store } from "./types.ts";
import { planPrune } from "./plan_prune.ts";

/** Options of {@linkcode prune}. */
export interface PruneOptions {
  /**
   * Plan only; remove nothing and write no audit record.
   *
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * The current time.
   *
   * @default {new Date()}
   */
  now?: Date;
  /** Only these snapshots are candidates (e.g. one agent). */
  filter?: ListFilter;
}

/** What {@linkcode prune} did. */
export interface PruneResult extends PrunePlan {
  /** Snapshots actually removed (empty on a dry run). */
  removed: SnapshotInfo[];
  /** Whether this was a dry run. */
  dryRun: boolean;
}

/**
 * Applies a retention policy: lists the store (optionally filtered), plans with
 * `planPrune()`, and unless `dryRun` deletes each planned snapshot and appends an audit
 * record (`action: "prune"`) per removal. A dry run and a real run with the same inputs plan
 * the same removals.
 *
 * @param store The store.
 * @param policy The retention policy (check it first with `validateRetentionPolicy()`).
 * @param options Dry run, current time, candidate filter.
 * @returns The plan and what was removed.
 * @throws {UsageError} when `keepWithin` does not parse.
 *
 * @example Dry run
 * ```ts
 * import { openStore } from "./open_store.ts";
 * import { prune } from "./prune.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await openStore(dir);
 * const result = await prune(store, { keepDaily: 7 }, { dryRun: true });
 * console.log(result.remove.length); // 0
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function prune(
  store: Store,
  policy: RetentionPolicy,
  options: PruneOptions = {},
): Promise<PruneResult> {
  const now = options.now ?? new Date();
  const plan = planPrune(await store.list(options.filter ?? {}), policy, now);
  const dryRun = options.dryRun ?? false;
  const removed: SnapshotInfo[] = [];
  if (!dryRun) {
    for (const s of plan.remove) {
      await store.delete(s.id, { force: true });
      removed.push(s);
      await store.audit({
        at: new Date().toISOString(),
        action: "prune",
        tenant: s.tenant,
        agent_id: s.agent_id,
        snapshot_id: s.id,
        result: "ok",
        detail: `removed by retention policy ${JSON.stringify(policy)}`,
        host: Deno.hostname(),
        pid: Deno.pid,
      });
    }
  }
  return { ...plan, removed, dryRun };
}
