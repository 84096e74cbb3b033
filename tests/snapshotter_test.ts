/**
 * Snapshotter: serialization, events, hooks, skip_unchanged, restore failures and recovery.
 */
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { join } from "node:path";
import { createSnapshotter, type Snapshotter, type SnapshotterEvent } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { openStore } from "../store/open_store.ts";
import type { Store } from "../store/types.ts";
import { createHooks } from "../hooks/create_hooks.ts";
import { realSwapFs, type SwapFs } from "../_swap.ts";
import {
  dream,
  fingerprint,
  generateSampleMemory,
  type SampleMemory,
} from "../examples/sample_memory.ts";
import { LockedError, RefusedError } from "../errors.ts";

async function setup(
  extra: { swapFs?: SwapFs; skipUnchanged?: boolean; maxUserVersion?: number } = {},
): Promise<{ root: string; mem: SampleMemory; store: Store; snap: Snapshotter } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "memsnap-snapshotter-" });
  const mem = await generateSampleMemory(join(root, "agent"), { notes: 6, facts: 30 });
  const store = await openStore(join(root, "store"));
  const snap = createSnapshotter({
    store,
    agent: "a1",
    captures: [
      memdirPlugin({ dir: mem.memdir }),
      gitPlugin({ dir: mem.memdir }),
      sqlitePlugin({
        databases: mem.sqlite,
        ...(extra.maxUserVersion !== undefined ? { maxUserVersion: extra.maxUserVersion } : {}),
      }),
      statePlugin({ files: mem.state }),
    ],
    ...(extra.swapFs ? { swapFs: extra.swapFs } : {}),
    ...(extra.skipUnchanged ? { skipUnchanged: true } : {}),
  });
  return {
    root,
    mem,
    store,
    snap,
    async [Symbol.asyncDispose]() {
      await store.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("createSnapshotter() shares the snapshot in flight and chains parents", async () => {
  await using t = await setup();
  const events: SnapshotterEvent[] = [];
  t.snap.on((e) => events.push(e));
  const [a, b] = await Promise.all([t.snap.snapshot(), t.snap.snapshot()]);
  assertEquals(a.info.id, b.info.id, "concurrent calls share one snapshot");
  const c = await t.snap.snapshot({ label: "second" });
  assertEquals(c.info.parent, a.info.id);
  assertEquals((await t.snap.list()).map((s) => s.id), [a.info.id, c.info.id]);
  // The shared snapshot is reported once.
  assertEquals(events.filter((e) => e.type === "snapshot-created").length, 2);
});

Deno.test("createSnapshotter() skipUnchanged reports the previous snapshot when nothing changed", async () => {
  await using t = await setup({ skipUnchanged: true });
  const a = await t.snap.snapshot();
  const b = await t.snap.snapshot();
  assert(b.skipped);
  assertEquals(b.info.id, a.info.id);
  // The previous snapshot's manifest, as the store reads it (not parsed for the comparison).
  assertEquals(b.manifest, await t.store.readManifest(a.info.id));
  await dream(t.mem);
  const c = await t.snap.snapshot();
  assert(!c.skipped);
  assertEquals(c.info.parent, a.info.id);
  assertEquals((await t.snap.list()).length, 2);
});

Deno.test("Snapshotter.attach() snapshots on pre-dream and shutdown, and fails pre-restore closed", async () => {
  await using t = await setup();
  const hooks = createHooks();
  const off = t.snap.attach(hooks);
  const r = await hooks.emit("pre-dream", { agentId: "a1" });
  assertEquals(r.failures, []);
  await hooks.emit("shutdown", { deadline: Date.now() + 30_000 });
  assertEquals((await t.snap.list()).map((s) => s.created_by), ["pre-dream", "shutdown"]);
  // A pre-restore snapshot that fails blocks the restore (fail-closed).
  await Deno.remove(t.mem.sqlite.vector!);
  await assertRejects(() => hooks.emit("pre-restore", { snapshotId: "x" }));
  off();
  const after = await hooks.emit("pre-dream", {});
  assertEquals(after.ran, []);
});

Deno.test("Snapshotter.restore() refuses a newer user_version and leaves memory untouched", async () => {
  await using t = await setup({ maxUserVersion: 2 });
  const { info } = await t.snap.snapshot();
  const before = await fingerprint(t.mem);
  const e = await assertRejects(() => t.snap.restore(info.id));
  assert(e instanceof RefusedError, String(e));
  assert(/user_version 3/.test((e as Error).message), (e as Error).message);
  assertEquals(await fingerprint(t.mem), before);
});

Deno.test("Snapshotter.restore() rolls every target back when a swap step fails", async () => {
  let renames = 0;
  const failing: SwapFs = {
    ...realSwapFs,
    rename: (from, to) => {
      // Fail at the 5th rename: the memory dir is already swapped, the databases are not.
      if (++renames === 5) return Promise.reject(new Error("injected: disk error"));
      return realSwapFs.rename(from, to);
    },
  };
  await using t = await setup({ swapFs: failing });
  const { info } = await t.snap.snapshot();
  await dream(t.mem);
  const dreamed = await fingerprint(t.mem);
  renames = 0;
  await assertRejects(() => t.snap.restore(info.id));
  assertEquals(await fingerprint(t.mem), dreamed);
  const log = await t.store.auditLog({ action: "restore" });
  assertEquals(log.at(-1)?.result, "failed");
});

Deno.test("the next snapshot() completes or rolls back a restore that crashed mid-swap", async () => {
  let renames = 0;
  let dead = false;
  const crashing: SwapFs = {
    ...realSwapFs,
    rename: (from, to) => {
      if (dead || ++renames === 4) {
        dead = true; // the process "dies": nothing after this point happens
        return Promise.reject(new Error("killed"));
      }
      return realSwapFs.rename(from, to);
    },
    remove: (p) => dead ? Promise.reject(new Error("killed")) : realSwapFs.remove(p),
    writeFileAtomic: (p, d) =>
      dead ? Promise.reject(new Error("killed")) : realSwapFs.writeFileAtomic(p, d),
  };
  await using t = await setup({ swapFs: crashing });
  const { info } = await t.snap.snapshot();
  await dream(t.mem);
  const dreamed = await fingerprint(t.mem);
  renames = 0;
  await assertRejects(() => t.snap.restore(info.id));
  // The "process" died mid-swap: a journal is left behind. A new process recovers.
  const fresh = createSnapshotter({
    store: t.store,
    agent: "a1",
    captures: [
      memdirPlugin({ dir: t.mem.memdir }),
      gitPlugin({ dir: t.mem.memdir }),
      sqlitePlugin({ databases: t.mem.sqlite }),
      statePlugin({ files: t.mem.state }),
    ],
  });
  const events: SnapshotterEvent[] = [];
  fresh.on((e) => events.push(e));
  await fresh.snapshot();
  const rec = events.find((e) => e.type === "recovered");
  assert(
    rec && rec.type === "recovered" && rec.outcome === "rolled_back",
    JSON.stringify(events.map((e) => e.type)),
  );
  assertEquals(await fingerprint(t.mem), dreamed);
});

Deno.test("recovery removes what killed restores and snapshots left, and nothing else", async () => {
  await using t = await setup();
  const warnings: string[] = [];
  const stateDir = await t.store.stateDir("default", "a1");
  // What a restore killed mid-extraction leaves (its finally never ran), and neighbours that
  // are not restores' work dirs.
  const work = join(stateDir, "restore-mwx7k2p1-0a1b2c3d");
  await Deno.mkdir(join(work, "payload", "memdir"), { recursive: true });
  await Deno.writeTextFile(join(work, "payload", "memdir", "note.md"), "half extracted");
  await Deno.mkdir(join(stateDir, "restore-notes"));
  await Deno.writeTextFile(join(stateDir, "restore-mwx7k2p1-0a1b2c3e"), "a file, not a dir");
  // A restore killed while extracting next to the memory dir (store on another filesystem):
  // its marker names the payload dir; a damaged marker names something else, left alone.
  const work2 = join(stateDir, "restore-mwx7k2p2-0a1b2c3f");
  const payload2 = join(t.root, ".memsnap-payload-mwx7k2p2-0a1b2c3f");
  await Deno.mkdir(work2);
  await Deno.mkdir(join(payload2, "memdir"), { recursive: true });
  await Deno.writeTextFile(join(payload2, "memdir", "note.md"), "half extracted");
  await Deno.writeTextFile(join(work2, "payload-dir"), payload2);
  const work3 = join(stateDir, "restore-mwx7k2p3-0a1b2c40");
  const precious2 = join(t.root, ".memsnap-payload-mwx7k2p2-0a1b2c3f-not-mine");
  await Deno.mkdir(work3);
  await Deno.mkdir(precious2);
  await Deno.writeTextFile(join(work3, "payload-dir"), precious2);
  // A journal write cut short (its temporary file), and a file that only looks like one.
  await Deno.writeTextFile(join(stateDir, "restore-journal.json.tmp-0df39e49"), '{"vers');
  await Deno.writeTextFile(join(stateDir, "restore-journal.json.tmp-notmine"), "kept");
  // A killed snapshot's staging dir and its marker; a marker whose dir is gone already; a
  // damaged marker naming a directory that is not its staging dir.
  const staging = join(t.root, "memsnap-capture-5f3a9c");
  await Deno.mkdir(join(staging, "sqlite"), { recursive: true });
  await Deno.writeTextFile(join(staging, "sqlite", "copy.sqlite"), "a copy");
  await Deno.writeTextFile(join(stateDir, "staging-5f3a9c"), staging);
  await Deno.writeTextFile(join(stateDir, "staging-77aa"), join(t.root, "memsnap-capture-77aa"));
  const precious = join(t.root, "precious");
  await Deno.mkdir(precious);
  await Deno.writeTextFile(join(stateDir, "staging-0b0b"), precious);
  const snap = createSnapshotter({
    store: t.store,
    agent: "a1",
    captures: [memdirPlugin({ dir: t.mem.memdir })],
    progress: { progress() {}, warn: (m: string) => void warnings.push(m) },
  });
  const r = await snap.recover();
  assertEquals(r.outcome, "none");
  const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
  assert(!(await exists(work)), "the stale work dir is gone");
  assert(!(await exists(work2)) && !(await exists(work3)), "the other stale work dirs are gone");
  assert(!(await exists(payload2)), "the payload dir its marker names is gone");
  assert(await exists(precious2), "a damaged payload marker's directory is left alone");
  assert(!(await exists(staging)), "the killed snapshot's staging is gone");
  assert(await exists(precious), "a damaged marker's directory is left alone");
  assert(!(await exists(join(stateDir, "restore-journal.json.tmp-0df39e49"))), "journal tmp");
  assert(await exists(join(stateDir, "restore-journal.json.tmp-notmine")));
  for (const m of ["staging-5f3a9c", "staging-77aa", "staging-0b0b"]) {
    assert(!(await exists(join(stateDir, m))), `marker ${m} removed`);
  }
  assert((await Deno.lstat(join(stateDir, "restore-notes"))).isDirectory);
  assert((await Deno.lstat(join(stateDir, "restore-mwx7k2p1-0a1b2c3e"))).isFile);
  assertEquals(warnings.length, 1, JSON.stringify(warnings));
  assert(
    /Removed what 4 interrupted restore\(s\) or snapshot\(s\)/.test(warnings[0]!),
    warnings[0],
  );
  // A restore that runs to the end leaves none behind, and the next recovery says nothing.
  const { info } = await snap.snapshot();
  await snap.restore(info.id, { noPreSnapshot: true });
  const left = [];
  for await (const e of Deno.readDir(stateDir)) {
    if (/^restore-.*-[0-9a-f]{8}$|^staging-/.test(e.name)) left.push(e.name);
  }
  assertEquals(left, ["restore-mwx7k2p1-0a1b2c3e"]);
  assertEquals(warnings.length, 1, JSON.stringify(warnings));
});

Deno.test("Snapshotter lock: a second process's lock makes snapshot() fail at once with lockTimeoutMs 0", async () => {
  await using t = await setup();
  const lock = await t.store.lock("default", "a1", { timeoutMs: 0 });
  try {
    const quick = createSnapshotter({
      store: t.store,
      agent: "a1",
      captures: [memdirPlugin({ dir: t.mem.memdir })],
      lockTimeoutMs: 0,
    });
    const e = await assertRejects(() => quick.snapshot());
    assert(e instanceof LockedError, String(e));
  } finally {
    await lock.release();
  }
});

Deno.test("Snapshotter.restore() moves files absent from the snapshot aside, outside the memory dir", async () => {
  await using t = await setup();
  const { info } = await t.snap.snapshot();
  await Deno.writeTextFile(join(t.mem.memdir, "notes/new-idea.md"), "written after the snapshot");
  const r = await t.snap.restore(info.id);
  await assertRejects(() => Deno.stat(join(t.mem.memdir, "notes/new-idea.md")));
  assertEquals(r.aside.length, 1, JSON.stringify(r.aside));
  assert(!r.aside[0]!.startsWith(t.mem.memdir + "/"), "kept outside the memory dir");
  assertEquals(
    await Deno.readTextFile(join(r.aside[0]!, "notes/new-idea.md")),
    "written after the snapshot",
  );
});

Deno.test("createSnapshotter() retention prunes after each snapshot, keeping the newest", async () => {
  await using t = await setup();
  const snap = createSnapshotter({
    store: t.store,
    agent: "a1",
    captures: [memdirPlugin({ dir: t.mem.memdir })],
    retention: { keepLast: 2 },
  });
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push((await snap.snapshot({ label: `s${i}` })).info.id);
  assertEquals((await snap.list()).map((s) => s.id), ids.slice(2));
});

Deno.test("createSnapshotter() runs captures concurrently; one plugin's failure aborts the others and wins", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-snapshotter-" });
  try {
    const store = await openStore(join(root, "store"));
    let slowSawAbort = false;
    let slowEnded = false;
    let stagingSeen = "";
    let started = 0;
    const bothStarted = Promise.withResolvers<void>();
    const start = (): void => {
      if (++started === 2) bothStarted.resolve();
    };
    const snap = createSnapshotter({
      store,
      agent: "a1",
      captures: [
        {
          name: "slow",
          version: "1",
          owns: (p) => p.startsWith("slow/"),
          async capture(ctx) {
            stagingSeen = ctx.staging;
            start();
            // Waits for the other plugin, which only fails once both are running.
            await new Promise<void>((resolve) => {
              if (ctx.signal.aborted) return resolve();
              ctx.signal.addEventListener("abort", () => resolve(), { once: true });
            });
            slowSawAbort = ctx.signal.aborted;
            await new Promise((r) => setTimeout(r, 50));
            // Staging must still exist while a plugin is running.
            await Deno.stat(ctx.staging);
            slowEnded = true;
            throw new Error("aborted");
          },
          restore: () => Promise.resolve(),
        },
        {
          name: "bad",
          version: "1",
          owns: (p) => p.startsWith("bad/"),
          async capture() {
            start();
            await bothStarted.promise;
            throw new Error("disk on fire");
          },
          restore: () => Promise.resolve(),
        },
      ],
    });
    const e = await assertRejects(() => snap.snapshot());
    assert((e as Error).message.includes('plugin "bad": disk on fire'), (e as Error).message);
    assert(slowSawAbort, "the slow plugin's signal was aborted");
    assert(slowEnded, "the slow plugin ended before the snapshot failed");
    assert(
      await Deno.stat(stagingSeen).then(() => false, (e) => e instanceof Deno.errors.NotFound),
      "staging was removed",
    );
    assertEquals((await store.list()).length, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
