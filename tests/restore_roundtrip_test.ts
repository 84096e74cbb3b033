/**
 * A restored memory is captured again like any other: snapshot → restore → snapshot, with
 * and without redaction (git history is re-read from the pack the restore wrote).
 */
import { assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { createSnapshotter } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { loadPacks } from "../redact/load_pack.ts";
import { openStore } from "../store/open_store.ts";
import { dream, fingerprint, generateSampleMemory } from "../examples/sample_memory.ts";

Deno.test("snapshot() of a restored memory succeeds, redacted or not, and restores again exactly", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-roundtrip-" });
  const store = await openStore(join(root, "store"));
  try {
    const mem = await generateSampleMemory(join(root, "agent"), { notes: 8, facts: 30 });
    const snap = createSnapshotter({
      store,
      agent: "a1",
      captures: [
        memdirPlugin({ dir: mem.memdir }),
        gitPlugin({ dir: mem.memdir }),
        sqlitePlugin({ databases: mem.sqlite }),
        statePlugin({ files: mem.state }),
      ],
      redact: { packs: await loadPacks("secrets,pii"), key: new Uint8Array(32) },
    });
    const first = await snap.snapshot({ redact: false });
    const original = await fingerprint(mem);
    await dream(mem);
    await snap.restore(first.info.id, { noPreSnapshot: true });
    assertEquals(await fingerprint(mem), original);
    const again = await snap.snapshot({ redact: false });
    const redacted = await snap.snapshot();
    await dream(mem, 2);
    await snap.restore(again.info.id, { noPreSnapshot: true });
    assertEquals(await fingerprint(mem), original);
    // Files, git history and state come back byte for byte; a database's file bytes may differ
    // (SQLite header counters) while its content is equal, which the fingerprints check.
    const bytes = (m: typeof first.manifest) =>
      m.artifacts.filter((a) => a.kind !== "sqlite").map((a) => [a.path, a.sha256]);
    assertEquals(bytes(again.manifest), bytes(first.manifest));
    await snap.restore(redacted.info.id, { noPreSnapshot: true });
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
});
