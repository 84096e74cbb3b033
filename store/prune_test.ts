import fc from "fast-check";
import { prune } from "./prune.ts";
import { LocalStore } from "./local_store.ts";
import type { AuditRecord, DeleteOptions, ListFilter, SnapshotInfo, Store } from "./types.ts";
import { assert, assertEquals } from "../tests/store_assert.ts";
import { put } from "../tests/store_contract.ts";
import { manifest } from "../tests/store_fixtures.ts";

/** Just enough of a store for prune(): list, delete, audit. */
function memoryStore(snaps: SnapshotInfo[]): Store & { audits: AuditRecord[] } {
  let live = [...snaps];
  const audits: AuditRecord[] = [];
  return {
    audits,
    list: (f: ListFilter = {}) =>
      Promise.resolve(live.filter((s) => f.agent === undefined || s.agent_id === f.agent)),
    delete: (id: string, _o?: DeleteOptions) => {
      live = live.filter((s) => s.id !== id);
      return Promise.resolve();
    },
    audit: (r: AuditRecord) => {
      audits.push(r);
      return Promise.resolve();
    },
  } as unknown as Store & { audits: AuditRecord[] };
}

Deno.test("prune() property: a dry run and a real run agree", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          h: fc.integer({ min: 0, max: 2000 }),
          agent: fc.constantFrom("a1", "a2"),
          pinned: fc.boolean(),
        }),
        { maxLength: 40 },
      ),
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 0, max: 5 }),
      async (rows, last, daily) => {
        const snaps: SnapshotInfo[] = rows.map((r, i) => ({
          id: `s${i}`,
          parent: null,
          agent_id: r.agent,
          tenant: "default",
          created_at: new Date(Date.parse("2026-01-01T00:00:00Z") + r.h * 3_600_000).toISOString(),
          created_by: "cli",
          label: null,
          size: 1,
          path: "",
          encrypted: false,
          redacted: false,
          pinned: r.pinned,
        }));
        const policy = { keepLast: last, keepDaily: daily };
        const now = new Date("2027-01-01T00:00:00Z");
        const store = memoryStore(snaps);
        const dry = await prune(store, policy, { dryRun: true, now });
        assertEquals(dry.removed, []);
        assertEquals((await store.list()).length, snaps.length);
        assertEquals(store.audits.length, 0);
        const real = await prune(store, policy, { now });
        assertEquals(real.removed.map((s) => s.id), dry.remove.map((s) => s.id));
        assertEquals(real.keep, dry.keep);
        assertEquals((await store.list()).length, snaps.length - dry.remove.length);
        assertEquals(store.audits.map((a) => a.snapshot_id), dry.remove.map((s) => s.id));
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("prune() removes bundles from a LocalStore and audit-logs each removal", async () => {
  const dir = await Deno.makeTempDir();
  const store = await LocalStore.open(dir);
  try {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    for (let i = 0; i < 6; i++) await put(store, manifest({ at: new Date(t0 + i * 86_400_000) }));
    const all = await store.list();
    await store.pin(all[0]!.id, true);
    const r = await prune(store, { keepLast: 2 }, { now: new Date(t0 + 10 * 86_400_000) });
    assertEquals(r.removed.map((s) => s.id), all.slice(1, 4).map((s) => s.id));
    assertEquals((await store.list()).map((s) => s.id), [all[0]!.id, all[4]!.id, all[5]!.id]);
    const log = await store.auditLog({ action: "prune" });
    assertEquals(log.map((a) => a.snapshot_id), all.slice(1, 4).map((s) => s.id));
    for (const s of r.removed) assert(!(await Deno.stat(s.path).then(() => true, () => false)));
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
