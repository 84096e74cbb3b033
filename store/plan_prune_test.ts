import fc from "fast-check";
import { planPrune } from "./plan_prune.ts";
import { validateRetentionPolicy } from "./validate_retention_policy.ts";
import type { RetentionPolicy, SnapshotInfo } from "./types.ts";
import { UsageError } from "../errors.ts";
import { assert, assertEquals } from "../tests/store_assert.ts";
import nodeAssert from "node:assert/strict";

let n = 0;
function snap(at: string, fields: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return {
    id: `${at.replace(/[-:.]/g, "")}-${(n++).toString(16).padStart(8, "0")}`,
    parent: null,
    agent_id: "a1",
    tenant: "default",
    created_at: new Date(at).toISOString(),
    created_by: "cli",
    label: null,
    size: 1,
    path: "",
    encrypted: false,
    redacted: false,
    pinned: false,
    ...fields,
  };
}
const NOW = new Date("2027-01-01T00:00:00Z");
const kept = (snaps: SnapshotInfo[], policy: RetentionPolicy) => {
  const plan = planPrune(snaps, policy, NOW);
  const ids = new Set(plan.keep.map((k) => k.id));
  return snaps.filter((s) => ids.has(s.id)).map((s) => s.created_at.slice(0, 16));
};

Deno.test("planPrune() keepDaily keeps the newest snapshot of each of the last N days", () => {
  const snaps: SnapshotInfo[] = [];
  for (let d = 1; d <= 5; d++) {
    snaps.push(snap(`2026-03-0${d}T08:00:00Z`), snap(`2026-03-0${d}T20:00:00Z`));
  }
  assertEquals(kept(snaps, { keepDaily: 3 }), [
    "2026-03-03T20:00",
    "2026-03-04T20:00",
    "2026-03-05T20:00",
  ]);
  assertEquals(kept(snaps, { keepLast: 1, keepDaily: -1 }).length, 5);
});

Deno.test("planPrune() weekly, monthly and yearly buckets follow restic", () => {
  const snaps = [
    snap("2024-12-30T10:00:00Z"), // ISO week 2025-W01
    snap("2025-01-05T10:00:00Z"), // ISO week 2025-W01 (Sunday)
    snap("2025-01-06T10:00:00Z"), // 2025-W02
    snap("2025-02-10T10:00:00Z"),
    snap("2025-02-20T10:00:00Z"),
    snap("2026-01-01T10:00:00Z"),
  ];
  assertEquals(kept(snaps, { keepWeekly: 3 }), [
    "2025-02-10T10:00",
    "2025-02-20T10:00",
    "2026-01-01T10:00",
  ]);
  assertEquals(kept(snaps, { keepWeekly: 10 }).includes("2024-12-30T10:00"), false);
  assertEquals(kept(snaps, { keepMonthly: 3 }), [
    "2025-01-06T10:00",
    "2025-02-20T10:00",
    "2026-01-01T10:00",
  ]);
  assertEquals(kept(snaps, { keepYearly: 5 }), [
    "2024-12-30T10:00",
    "2025-02-20T10:00",
    "2026-01-01T10:00",
  ]);
});

Deno.test("planPrune() keepWithin is measured from the newest snapshot, keepLabel keeps labels", () => {
  const snaps = [
    snap("2026-01-01T00:00:00Z", { label: "golden" }),
    snap("2026-01-09T00:00:00Z"),
    snap("2026-01-09T22:00:00Z"),
    snap("2026-01-10T12:00:00Z"),
  ];
  assertEquals(kept(snaps, { keepWithin: "1d" }), [
    "2026-01-09T22:00",
    "2026-01-10T12:00",
  ]);
  assertEquals(kept(snaps, { keepWithin: "1d13h", keepTag: ["golden"] }), [
    "2026-01-01T00:00",
    "2026-01-09T00:00",
    "2026-01-09T22:00",
    "2026-01-10T12:00",
  ]);
  const plan = planPrune(snaps, { keepLabel: ["golden"] }, NOW);
  assertEquals(plan.keep.map((k) => k.reasons), [["newest"], ["label golden"]]);
});

Deno.test("planPrune() groups per agent and never removes pinned, newest or future snapshots", () => {
  const snaps = [
    snap("2026-01-01T00:00:00Z", { pinned: true }),
    snap("2026-01-02T00:00:00Z"),
    snap("2026-01-03T00:00:00Z", { agent_id: "a2" }),
    snap("2026-01-04T00:00:00Z"),
    snap("2028-01-01T00:00:00Z", { agent_id: "a2" }),
  ];
  const plan = planPrune(snaps, { keepLast: 1 }, NOW);
  assertEquals(plan.remove.map((s) => s.created_at.slice(0, 10)), ["2026-01-02", "2026-01-03"]);
  const reasons = Object.fromEntries(plan.keep.map((k) => [k.id, k.reasons]));
  assertEquals(reasons[snaps[0]!.id], ["pinned"]);
  assertEquals(reasons[snaps[2]!.id], undefined);
  assertEquals(reasons[snaps[4]!.id], ["newest", "newer than now", "last snapshot"]);
  // an empty policy removes nothing
  assertEquals(planPrune(snaps, {}, NOW).remove, []);
});

Deno.test("validateRetentionPolicy() refuses an empty policy and bad values", () => {
  for (const p of [{}, { keepLast: 0 }, { keepLabel: [] }]) {
    nodeAssert.throws(() => validateRetentionPolicy(p), (e: unknown) => {
      nodeAssert.ok(e instanceof UsageError);
      nodeAssert.equal(e.message, "Cannot prune: no keep rule given");
      return true;
    });
  }
  nodeAssert.throws(() => validateRetentionPolicy({ keepLast: 1.5 }), UsageError);
  nodeAssert.throws(() => validateRetentionPolicy({ keepDaily: -2 }), UsageError);
  nodeAssert.throws(() => validateRetentionPolicy({ keepWithin: "2x" }), UsageError);
  nodeAssert.throws(
    () => validateRetentionPolicy({ keepLatest: 1 } as unknown as RetentionPolicy),
    UsageError,
  );
  validateRetentionPolicy({ keepWithin: "2d" });
  validateRetentionPolicy({ keepMonthly: -1 });
});

const arbSnaps = fc.array(
  fc.record({
    t: fc.integer({ min: 0, max: 3 * 365 * 24 }),
    agent: fc.constantFrom("a1", "a2", "a3"),
    pinned: fc.boolean(),
    label: fc.constantFrom(null, "x", "y"),
  }),
  { maxLength: 60 },
).map((rows) =>
  rows.map((r, i) =>
    snap(new Date(Date.parse("2024-01-01T00:00:00Z") + r.t * 3_600_000).toISOString(), {
      id: `s${i}`,
      agent_id: r.agent,
      pinned: r.pinned,
      label: r.label,
    })
  )
);
const count = fc.oneof(fc.constant(undefined), fc.integer({ min: -1, max: 6 }));
const arbPolicy: fc.Arbitrary<RetentionPolicy> = fc.record({
  keepLast: count,
  keepHourly: count,
  keepDaily: count,
  keepWeekly: count,
  keepMonthly: count,
  keepYearly: count,
  keepWithin: fc.constantFrom(undefined, "3d", "2m", "1y", "12h"),
  keepLabel: fc.constantFrom(undefined, ["x"], []),
}).map((p) =>
  Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as RetentionPolicy
);

Deno.test("planPrune() property: never removes pinned or the newest of a group; partitions the input", () => {
  fc.assert(
    fc.property(arbSnaps, arbPolicy, (snaps, policy) => {
      const plan = planPrune(snaps, policy, NOW);
      const removed = new Set(plan.remove.map((s) => s.id));
      const keptIds = new Set(plan.keep.map((k) => k.id));
      assertEquals(removed.size + keptIds.size, snaps.length);
      for (const s of snaps) assert(removed.has(s.id) !== keptIds.has(s.id));
      for (const s of plan.remove) assert(!s.pinned, "pinned removed");
      const byGroup = new Map<string, SnapshotInfo>();
      for (const s of snaps) {
        const cur = byGroup.get(s.agent_id);
        if (
          !cur || s.created_at > cur.created_at ||
          (s.created_at === cur.created_at && s.id > cur.id)
        ) {
          byGroup.set(s.agent_id, s);
        }
      }
      for (const s of byGroup.values()) assert(!removed.has(s.id), "newest removed");
    }),
    { numRuns: 300 },
  );
});

Deno.test("planPrune() property: keepLast N keeps at least min(N, count) per group", () => {
  fc.assert(
    fc.property(arbSnaps, fc.integer({ min: 1, max: 10 }), arbPolicy, (snaps, last, extra) => {
      const plan = planPrune(snaps, { ...extra, keepLast: last }, NOW);
      const keptIds = new Set(plan.keep.map((k) => k.id));
      for (const agent of ["a1", "a2", "a3"]) {
        const group = snaps.filter((s) => s.agent_id === agent);
        const k = group.filter((s) => keptIds.has(s.id)).length;
        assert(
          k >= Math.min(last, group.length),
          `${agent}: kept ${k} < min(${last}, ${group.length})`,
        );
      }
    }),
    { numRuns: 300 },
  );
});
