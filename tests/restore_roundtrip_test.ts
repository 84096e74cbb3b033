/**
 * A restored memory is captured again like any other: snapshot → restore → snapshot, with
 * and without redaction (git history is re-read from the pack the restore wrote).
 */
import { assertEquals } from "./_assert.ts";
import { basename, dirname, join } from "node:path";
import { createSnapshotter } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { loadPacks } from "../redact/load_pack.ts";
import { openStore } from "../store/open_store.ts";
import { dream, fingerprint, generateSampleMemory } from "../examples/sample_memory.ts";
import { treeOf } from "./capture_helpers.ts";

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

Deno.test("restore() moves the extracted memory dir into place: nested dirs, modes, inner symlinks, no leftovers", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-roundtrip-" });
  const store = await openStore(join(root, "store"));
  try {
    const dir = join(root, "mem");
    await Deno.mkdir(join(dir, "notes/deep/er"), { recursive: true });
    await Deno.writeTextFile(join(dir, "notes/a.md"), "# A\n");
    await Deno.writeTextFile(join(dir, "notes/deep/er/b.md"), "b\n");
    await Deno.writeFile(join(dir, "empty"), new Uint8Array());
    await Deno.writeTextFile(join(dir, "run.sh"), "#!/bin/sh\n");
    await Deno.chmod(join(dir, "run.sh"), 0o755);
    await Deno.symlink("a.md", join(dir, "notes/link-to-a"));
    await Deno.symlink("notes/deep", join(dir, "deep-link"));
    const want = await treeOf(dir, () => false);
    const snap = createSnapshotter({ store, agent: "a1", captures: [memdirPlugin({ dir })] });
    const first = await snap.snapshot({ redact: false });
    await Deno.remove(join(dir, "notes"), { recursive: true });
    await Deno.writeTextFile(join(dir, "run.sh"), "changed\n");
    await Deno.writeTextFile(join(dir, "new.md"), "new\n");
    await snap.restore(first.info.id, { noPreSnapshot: true });
    assertEquals(await treeOf(dir, () => false), want);
    assertEquals((await Deno.stat(join(dir, "run.sh"))).mode! & 0o777, 0o755);
    assertEquals((await Deno.stat(join(dir, "notes/a.md"))).mode! & 0o777, 0o644);
    // The restore's work dir (its extraction) is gone.
    const state = await store.stateDir("default", "a1");
    const left = [];
    for await (const e of Deno.readDir(state)) if (e.name.startsWith("restore-")) left.push(e.name);
    assertEquals(left, []);
  } finally {
    await store.close();
    await Deno.remove(root, { recursive: true });
  }
});

/** A directory on another filesystem than the system temp dir (tmpfs), if this machine has one. */
function otherFilesystem(): string | undefined {
  try {
    const tmp = Deno.makeTempDirSync({ prefix: "memsnap-fs-probe-" });
    try {
      const dev = Deno.statSync(tmp).dev;
      return Deno.statSync("/dev/shm").dev !== dev ? "/dev/shm" : undefined;
    } finally {
      Deno.removeSync(tmp);
    }
  } catch {
    return undefined;
  }
}

const OTHER_FS = otherFilesystem();

Deno.test({
  name:
    "restore() from a store on another filesystem extracts next to the memory dir, moves it in, leaves nothing",
  ignore: OTHER_FS === undefined,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "memsnap-crossfs-" });
    const far = await Deno.makeTempDir({ dir: OTHER_FS!, prefix: "memsnap-crossfs-" });
    const store = await openStore(join(root, "store"));
    try {
      const mem = await generateSampleMemory(join(far, "agent"), { notes: 8, facts: 30 });
      const seen: { payloadDir: string; movable: boolean | undefined }[] = [];
      const memdir = memdirPlugin({ dir: mem.memdir });
      const recording: typeof memdir = {
        ...memdir,
        restore(ctx) {
          seen.push({ payloadDir: ctx.payloadDir, movable: ctx.payloadMovable });
          return memdir.restore(ctx);
        },
      };
      const captures = [
        recording,
        gitPlugin({ dir: mem.memdir }),
        sqlitePlugin({ databases: mem.sqlite }),
        statePlugin({ files: mem.state }),
      ];
      const snap = createSnapshotter({ store, agent: "a1", captures });
      const first = await snap.snapshot({ redact: false });
      const original = await fingerprint(mem);
      await dream(mem);
      await snap.restore(first.info.id, { noPreSnapshot: true });
      assertEquals(await fingerprint(mem), original);
      // Extracted on the memory dir's filesystem, next to it, and moved from there.
      assertEquals(seen.length, 1);
      assertEquals(dirname(seen[0]!.payloadDir), dirname(mem.memdir));
      assertEquals(basename(seen[0]!.payloadDir).startsWith(".memsnap-payload-"), true);
      assertEquals(seen[0]!.movable, true);
      const leftovers = async () => {
        const left = [];
        for await (const e of Deno.readDir(dirname(mem.memdir))) {
          if (e.name.startsWith(".memsnap-payload-")) left.push(e.name);
        }
        const state = await store.stateDir("default", "a1");
        for await (const e of Deno.readDir(state)) {
          if (/^restore-.*-[0-9a-f]{8}$/.test(e.name)) left.push(e.name);
        }
        return left;
      };
      assertEquals(await leftovers(), []);
      // A restore that fails after the extraction leaves nothing either, and changes nothing.
      await dream(mem);
      const dreamed = await fingerprint(mem);
      const failing = createSnapshotter({
        store,
        agent: "a1",
        captures: [
          { ...recording, restore: () => Promise.reject(new Error("boom")) },
          ...captures.slice(1),
        ],
      });
      await failing.restore(first.info.id, { noPreSnapshot: true }).then(
        () => Promise.reject(new Error("the restore did not fail")),
        (e) => assertEquals((e as Error).message, "boom"),
      );
      assertEquals(await fingerprint(mem), dreamed);
      assertEquals(await leftovers(), []);
    } finally {
      await store.close();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(far, { recursive: true });
    }
  },
});
