/**
 * Retention flags (restic's vocabulary) and applying them.
 *
 * @module
 */
import type { FlagSpec } from "./_spec.ts";
import type { CommandContext, Flags } from "./_spec.ts";
import type { Store } from "../store/types.ts";
import { UsageError } from "../errors.ts";
import { list, str } from "./_context.ts";
import { prune } from "../store/prune.ts";
import type { RetentionPolicy } from "../store/types.ts";

/** Retention flags. */
export const RETENTION_FLAGS: FlagSpec = {
  "keep-last": { type: "string" },
  "keep-hourly": { type: "string" },
  "keep-daily": { type: "string" },
  "keep-weekly": { type: "string" },
  "keep-monthly": { type: "string" },
  "keep-yearly": { type: "string" },
  "keep-within": { type: "string" },
  "keep-label": { type: "string", multiple: true },
  "keep-tag": { type: "string", multiple: true },
};

/** Help of {@linkcode RETENTION_FLAGS}. */
export const RETENTION_HELP: Record<string, string> = {
  "keep-last": "keep the N newest snapshots",
  "keep-hourly": "keep the newest snapshot of each of the last N hours that have one",
  "keep-daily": "keep the newest snapshot of each of the last N days that have one",
  "keep-weekly": "keep the newest snapshot of each of the last N weeks that have one",
  "keep-monthly": "keep the newest snapshot of each of the last N months that have one",
  "keep-yearly": "keep the newest snapshot of each of the last N years that have one",
  "keep-within": "keep snapshots newer than this duration, e.g. 2d12h, 1y6m",
  "keep-label": "keep snapshots with this label",
  "keep-tag": "same as --keep-label",
};

function count(flags: Flags, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    throw new UsageError(`Cannot use --${name} "${v}": expected a whole number`);
  }
  return Number(v);
}

/** The policy given by the flags, or `undefined` when no keep rule is given. */
export function policyFrom(flags: Flags): RetentionPolicy | undefined {
  const p: RetentionPolicy = {};
  const n = (k: keyof RetentionPolicy, flag: string): void => {
    const v = count(flags, flag);
    if (v !== undefined) (p as Record<string, unknown>)[k] = v;
  };
  n("keepLast", "keep-last");
  n("keepHourly", "keep-hourly");
  n("keepDaily", "keep-daily");
  n("keepWeekly", "keep-weekly");
  n("keepMonthly", "keep-monthly");
  n("keepYearly", "keep-yearly");
  const within = str(flags, "keep-within");
  if (within) p.keepWithin = within;
  const labels = [...list(flags, "keep-label"), ...list(flags, "keep-tag")];
  if (labels.length > 0) p.keepLabel = labels;
  return Object.keys(p).length > 0 ? p : undefined;
}

/** After a snapshot: applies the retention policy of flags/config to this agent, if any. */
export async function applyRetentionFromFlags(
  ctx: CommandContext,
  store: Store,
  tenant: string,
  agent: string,
): Promise<void> {
  const policy = policyFrom(ctx.flags);
  if (!policy) return;
  const r = await prune(store, policy, { filter: { tenant, agent } });
  if (r.remove.length > 0) ctx.out.warn(`retention removed ${r.remove.length} old snapshot(s)`);
}
