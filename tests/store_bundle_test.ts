/**
 * Cross-module: real bundles from bundle/ written through the store and read back.
 *
 * @module
 */
import { writeBundle } from "../bundle/write_bundle.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { newSnapshotId } from "../bundle/new_snapshot_id.ts";
import { openStore } from "../store/open_store.ts";
import { prune } from "../store/prune.ts";
import { assert, assertEquals } from "./store_assert.ts";

function header(id: string, at: Date) {
  return {
    snapshot_id: id,
    agent_id: "agent-1",
    tenant: "default",
    label: null,
    created_at: at.toISOString(),
    created_by: "api",
    parent: null,
    captures: {},
    redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
    tools: { memsnap: "0.1.0" },
  };
}

Deno.test("LocalStore stores real bundles: writeBundle into create().path, commit, verify, prune", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openStore(dir);
  try {
    const t0 = Date.parse("2026-03-01T10:00:00.000Z");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const at = new Date(t0 + i * 86_400_000);
      const id = newSnapshotId(at);
      const bytes = new TextEncoder().encode(`note ${i}\n`);
      const pending = await store.create("default", "agent-1", id);
      const manifest = await writeBundle(pending.path, header(id, at), [{
        path: "memdir/notes.md",
        kind: "file",
        size: bytes.length,
        open: () => Promise.resolve(new Blob([bytes]).stream()),
      }]);
      const info = await pending.commit(manifest);
      assertEquals(info.id, id);
      assertEquals(await store.readManifest(id), manifest);
      const report = await verifyBundle(await store.open(id));
      assert(report.ok, JSON.stringify(report));
      ids.push(id);
    }
    assertEquals(await store.reindex(), 3);
    assertEquals((await store.resolve("latest", { agent: "agent-1" })).id, ids[2]);
    const r = await prune(store, { keepLast: 2 }, { now: new Date(t0 + 10 * 86_400_000) });
    assertEquals(r.removed.map((s) => s.id), [ids[0]]);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
