// Copyright memsnap authors. MIT license.
/**
 * Decides which snapshots a retention policy keeps, with restic's semantics.
 *
 * @module
 */
import type { PrunePlan, RetentionPolicy, SnapshotInfo } from "./types.ts";
import { parseDuration } from "./parse_duration.ts";

type Bucket = "hourly" | "daily" | "weekly" | "monthly" | "yearly";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day); // Thursday of this ISO week
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${pad(week)}`;
}

function bucketOf(kind: Bucket, d: Date): string {
  const y = d.getUTCFullYear();
  const m = pad(d.getUTCMonth() + 1);
  switch (kind) {
    case "yearly":
      return `${y}`;
    case "monthly":
      return `${y}-${m}`;
    case "weekly":
      return isoWeek(d);
    case "daily":
      return `${y}-${m}-${pad(d.getUTCDate())}`;
    case "hourly":
      return `${y}-${m}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}`;
  }
}

const BUCKETS: [Bucket, keyof RetentionPolicy][] = [
  ["hourly", "keepHourly"],
  ["daily", "keepDaily"],
  ["weekly", "keepWeekly"],
  ["monthly", "keepMonthly"],
  ["yearly", "keepYearly"],
];

/**
 * Plans a prune with restic's vocabulary and semantics, per (tenant, agent) group:
 *
 * - `keepLast` N keeps the N newest snapshots.
 * - `keepHourly`/`Daily`/`Weekly`/`Monthly`/`Yearly` N: going from newest to oldest, the
 *   newest snapshot of each period (UTC; ISO weeks) is kept, for the N newest periods that
 *   have a snapshot. `-1` means unlimited.
 * - `keepWithin` keeps every snapshot taken within the duration before the group's newest
 *   snapshot (restic measures from the newest snapshot, not from now, so an agent that stops
 *   snapshotting does not lose its history).
 * - `keepLabel` (alias `keepTag`) keeps every snapshot with one of those labels.
 *
 * Whatever the policy, pinned snapshots, the newest snapshot of each group, and snapshots
 * dated after `now` (another host's clock, or taken while pruning) are kept. An empty
 * policy keeps everything (a CLI refuses one with `validateRetentionPolicy()`).
 *
 * @param snapshots The candidates (any order, any groups).
 * @param policy The retention policy.
 * @param now The current time.
 * @returns Kept ids with the reasons that keep them, newest first per group, and the
 * snapshots to remove, oldest first.
 * @throws {UsageError} when `keepWithin` does not parse.
 *
 * @example Keep the last two snapshots
 * ```ts
 * import { planPrune } from "./plan_prune.ts";
 * import type { SnapshotInfo } from "./types.ts";
 * const snap = (id: string, at: string): SnapshotInfo => ({
 *   id, parent: null, agent_id: "a1", tenant: "default", created_at: at, created_by: "cli",
 *   label: null, size: 1, path: "", encrypted: false, redacted: false, pinned: false,
 * });
 * const plan = planPrune(
 *   [snap("s1", "2026-01-01T00:00:00Z"), snap("s2", "2026-01-02T00:00:00Z"), snap("s3", "2026-01-03T00:00:00Z")],
 *   { keepLast: 2 },
 *   new Date("2026-02-01T00:00:00Z"),
 * );
 * console.log(plan.remove.map((s) => s.id)); // ["s1"]
 * ```
 */
export function planPrune(
  snapshots: SnapshotInfo[],
  policy: RetentionPolicy,
  now: Date,
): PrunePlan {
  const within = policy.keepWithin ? parseDuration(policy.keepWithin) : undefined;
  const labels = new Set([...(policy.keepLabel ?? []), ...(policy.keepTag ?? [])]);
  const empty = !(policy.keepLast || within || labels.size ||
    BUCKETS.some(([, k]) => policy[k]));
  const groups = new Map<string, SnapshotInfo[]>();
  for (const s of snapshots) {
    const key = `${s.tenant}\0${s.agent_id}`;
    const g = groups.get(key);
    if (g) g.push(s);
    else groups.set(key, [s]);
  }
  const keep: PrunePlan["keep"] = [];
  const remove: SnapshotInfo[] = [];
  const nowMs = now.getTime();
  for (const group of groups.values()) {
    const newestFirst = [...group].sort((a, b) =>
      Date.parse(b.created_at) - Date.parse(a.created_at) ||
      (b.id < a.id ? -1 : b.id > a.id ? 1 : 0)
    );
    let last = policy.keepLast ?? 0;
    const counts = new Map<Bucket, number>(
      BUCKETS.map(([b, k]) => [b, (policy[k] as number) ?? 0]),
    );
    const lastBucket = new Map<Bucket, string>();
    let cutoff = -Infinity;
    const newest = newestFirst[0];
    if (within && newest) {
      const d = new Date(newest.created_at);
      d.setUTCFullYear(
        d.getUTCFullYear() - within.years,
        d.getUTCMonth() - within.months,
        d.getUTCDate() - within.days,
      );
      cutoff = d.getTime() - within.hours * 3_600_000;
    }
    newestFirst.forEach((s, i) => {
      const t = Date.parse(s.created_at);
      const reasons: string[] = [];
      if (empty) reasons.push("no keep rule");
      if (s.pinned) reasons.push("pinned");
      if (i === 0) reasons.push("newest");
      if (t > nowMs) reasons.push("newer than now");
      if (last !== 0) {
        reasons.push("last snapshot");
        if (last > 0) last--;
      }
      const date = new Date(t);
      for (const [b] of BUCKETS) {
        const n = counts.get(b) ?? 0;
        if (n === 0) continue;
        const key = bucketOf(b, date);
        if (lastBucket.get(b) !== key) {
          lastBucket.set(b, key);
          reasons.push(`${b} snapshot`);
          if (n > 0) counts.set(b, n - 1);
        }
      }
      if (within && t > cutoff) reasons.push(`within ${policy.keepWithin}`);
      if (s.label !== null && labels.has(s.label)) reasons.push(`label ${s.label}`);
      if (reasons.length) keep.push({ id: s.id, reasons });
      else remove.push(s);
    });
  }
  remove.sort((a, b) =>
    Date.parse(a.created_at) - Date.parse(b.created_at) || (a.id < b.id ? -1 : 1)
  );
  return { keep, remove };
}
