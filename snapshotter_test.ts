import assert from "node:assert/strict";
import { createSnapshotter, openBundleRef, summarizePlan } from "./snapshotter.ts";
import { memdirPlugin } from "./capture/mod.ts";
import { openStore } from "./store/open_store.ts";
import { NotFoundError, RefusedError } from "./errors.ts";
import type { Store } from "./store/types.ts";
import type { CapturePlugin } from "./capture/types.ts";
import { tempDir } from "./tests/_tools.ts";

const NO_STORE = undefined as unknown as Store; // a path reference never reaches the store

/** How many of this process's file descriptors are open on `path` (Linux). */
function openOn(path: string): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) === path) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

Deno.test("openBundleRef() reads a local bundle in chunks of readSize, and closes it when read or cancelled", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/b.msnap`;
  const bytes = new Uint8Array(600_001).map((_, i) => (i * 2654435761) >>> 24);
  await Deno.writeFile(path, bytes);
  for (const readSize of [65536, 256 << 10, undefined]) {
    const { stream, path: opened } = await openBundleRef(NO_STORE, path, {}, readSize);
    assert.equal(opened, path);
    const chunks = await Array.fromAsync(stream);
    const got = new Uint8Array(bytes.length);
    let off = 0;
    for (const c of chunks) {
      got.set(c, off);
      off += c.length;
    }
    assert.equal(off, bytes.length);
    assert.deepEqual(got, bytes);
    if (readSize !== undefined) {
      assert.ok(chunks.every((c) => c.length <= readSize));
      assert.equal(chunks.length, Math.ceil(bytes.length / readSize));
    }
  }
  assert.equal(openOn(path), 0);
  // Cancelled part way: the file is closed too.
  const { stream } = await openBundleRef(NO_STORE, path, {}, 65536);
  const reader = stream.getReader();
  assert.equal((await reader.read()).value?.length, 65536);
  assert.equal(openOn(path), 1);
  await reader.cancel();
  assert.equal(openOn(path), 0);
  // A BYOB reader (the bundle reader's) has its own buffer filled each time, short reads joined.
  {
    const { stream } = await openBundleRef(NO_STORE, path, {}, 65536);
    const byob = stream.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(200_000);
    const got: number[] = [];
    const seen = new Uint8Array(bytes.length);
    let off = 0;
    for (;;) {
      const r = await byob.read(new Uint8Array(buffer));
      if (r.done) break;
      got.push(r.value.length);
      seen.set(r.value, off);
      off += r.value.length;
      buffer = r.value.buffer as ArrayBuffer; // the same memory, handed back
    }
    assert.deepEqual(got, [200_000, 200_000, 200_000, 1]);
    assert.deepEqual(seen, bytes);
    assert.equal(openOn(path), 0);
  }
  await assert.rejects(
    openBundleRef(NO_STORE, `${dir.path}/missing.msnap`, {}, 65536),
    NotFoundError,
  );
});

Deno.test("restore() keeps every file absent from the snapshot aside, at any depth, and nothing else", async () => {
  await using dir = await tempDir();
  const mem = `${dir.path}/mem`;
  Deno.mkdirSync(`${mem}/notes/deep`, { recursive: true });
  Deno.writeTextFileSync(`${mem}/notes/a.md`, "a");
  Deno.writeTextFileSync(`${mem}/notes/deep/b.md`, "b");
  const store = await openStore(`${dir.path}/store`);
  try {
    const snap = createSnapshotter({ store, agent: "a1", captures: [memdirPlugin({ dir: mem })] });
    const { info } = await snap.snapshot({ redact: false });
    // Written after the snapshot: at the top, deep in a known dir, in a new dir, a symlink;
    // and a .git dir the memdir plugin does not restore (history is in the pre-restore snapshot).
    Deno.writeTextFileSync(`${mem}/top.md`, "top");
    Deno.writeTextFileSync(`${mem}/notes/deep/c.md`, "c");
    Deno.mkdirSync(`${mem}/fresh/er`, { recursive: true });
    Deno.writeTextFileSync(`${mem}/fresh/er/d.md`, "d");
    Deno.symlinkSync("notes/a.md", `${mem}/link`);
    Deno.mkdirSync(`${mem}/.git`);
    Deno.writeTextFileSync(`${mem}/.git/HEAD`, "ref: refs/heads/main\n");
    Deno.writeTextFileSync(`${mem}/notes/a.md`, "changed");
    const r = await snap.restore(info.id);
    assert.equal(r.aside.length, 1, JSON.stringify(r.aside));
    const aside = r.aside[0]!;
    const kept: string[] = [];
    const walk = (d: string, rel: string): void => {
      for (const e of Deno.readDirSync(d)) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory) walk(`${d}/${e.name}`, p);
        else kept.push(p);
      }
    };
    walk(aside, "");
    assert.deepEqual(kept.sort(), ["fresh/er/d.md", "link", "notes/deep/c.md", "top.md"]);
    assert.equal(Deno.readTextFileSync(`${aside}/fresh/er/d.md`), "d");
    assert.equal(Deno.readLinkSync(`${aside}/link`), "notes/a.md");
    assert.equal(Deno.readTextFileSync(`${mem}/notes/a.md`), "a");
    assert.throws(() => Deno.lstatSync(`${mem}/top.md`), Deno.errors.NotFound);
    assert.throws(() => Deno.lstatSync(`${mem}/link`), Deno.errors.NotFound);
  } finally {
    await store.close();
  }
});

Deno.test("restore() takes a plan of 200,000 entries (one per file of a large memory)", async () => {
  // Spread into push() as arguments, a plan this long overflowed the call stack (a restore of
  // a memory dir of 200,000 notes failed with "Maximum call stack size exceeded").
  await using dir = await tempDir();
  const target = `${dir.path}/live.txt`;
  const bytes = new TextEncoder().encode("hello");
  const N = 200_000;
  const plugin: CapturePlugin = {
    name: "many",
    owns: (path) => path.startsWith("many/"),
    capture: () =>
      Promise.resolve({
        artifacts: [{
          path: "many/a.txt",
          kind: "file",
          size: bytes.length,
          open: () => Promise.resolve(new Blob([bytes]).stream()),
        }],
      }),
    plan: () =>
      Promise.resolve(
        Array.from({ length: N }, (_, i) => ({ target: `${target}.${i}`, action: "add file" })),
      ),
    async restore(ctx) {
      const staged = await ctx.stage({ path: target, type: "file" });
      await Deno.writeFile(staged, bytes);
    },
  };
  const store = await openStore(`${dir.path}/store`);
  try {
    const snap = createSnapshotter({ store, agent: "a1", captures: [plugin] });
    const { info } = await snap.snapshot({ redact: false });
    const dry = await snap.restore(info.id, { dryRun: true });
    assert.equal(dry.plan.length, N);
    assert.equal(dry.plan[N - 1]!.target, `${target}.${N - 1}`);
    // A restore's result summarizes them (past planLimit, 1,000 by default) unless told not to.
    const r = await snap.restore(info.id, { noPreSnapshot: true });
    assert.deepEqual(r.plan, [{ target: dir.path, action: "add file", count: N }]);
    assert.equal(Deno.readTextFileSync(target), "hello");
    const full = await snap.restore(info.id, { noPreSnapshot: true, planLimit: Infinity });
    assert.equal(full.plan.length, N);
  } finally {
    await store.close();
  }
});

Deno.test("restore() refuses from the manifest, before reading the payload", async () => {
  await using dir = await tempDir();
  const mem = `${dir.path}/mem`;
  Deno.mkdirSync(mem);
  Deno.writeTextFileSync(`${mem}/a.md`, "a".repeat(100_000));
  const extra: CapturePlugin = {
    name: "extra",
    owns: (path) => path.startsWith("extra/"),
    capture: () =>
      Promise.resolve({
        artifacts: [{
          path: "extra/x",
          kind: "file",
          size: 1,
          open: () => Promise.resolve(new Blob(["x"]).stream()),
        }],
      }),
    restore: () => Promise.resolve(),
  };
  const store = await openStore(`${dir.path}/store`);
  try {
    const both = createSnapshotter({
      store,
      agent: "a1",
      captures: [memdirPlugin({ dir: mem }), extra],
    });
    const { info } = await both.snapshot({ redact: false });
    const phases: string[] = [];
    const memOnly = createSnapshotter({
      store,
      agent: "a1",
      captures: [memdirPlugin({ dir: mem })],
      progress: { progress: (e) => phases.push(e.phase), warn: () => {} },
    });
    await assert.rejects(
      memOnly.restore(info.id, { noPreSnapshot: true }),
      (e) =>
        e instanceof RefusedError &&
        /no configured capture plugin restores 1 artifact\(s\), e\.g\. "extra\/x"/.test(e.message),
    );
    // Refused before the payload was read: no extraction progress at all.
    assert.deepEqual(phases.filter((p) => p === "extract"), []);
    assert.equal(Deno.readTextFileSync(`${mem}/a.md`).length, 100_000);
  } finally {
    await store.close();
  }
});

Deno.test("summarizePlan() keeps a plan up to the limit, and past it one entry per action under the directory they share", () => {
  const plan = [
    { target: "/m/notes/a.md", action: "add file" },
    { target: "/m/notes/ab.md", action: "add file" },
    { target: "/m/.git", action: "replace git repository", detail: "HEAD a → b" },
    { target: "/m/notes/sub/c.md", action: "add file" },
    { target: "/m/run.sh", action: "change mode", detail: "755" },
    { target: "/m/notes/x/y.sh", action: "change mode", detail: "755" },
    { target: "/m/old.md", action: "remove file" },
    { target: "/m/older.md", action: "remove file" },
  ];
  assert.equal(summarizePlan(plan, 8), plan);
  assert.deepEqual(summarizePlan(plan, 7), [
    { target: "/m/notes", action: "add file", count: 3 },
    { target: "/m/.git", action: "replace git repository", detail: "HEAD a → b" },
    { target: "/m", action: "change mode", detail: "755", count: 2 },
    { target: "/m", action: "remove file", count: 2 },
  ]);
  // A directory and a path inside it share the directory; paths that share only "/" give "/".
  assert.deepEqual(
    summarizePlan([
      { target: "/m/notes", action: "remove file", detail: "a" },
      { target: "/m/notes/x", action: "remove file", detail: "b" },
      { target: "/a", action: "add file" },
      { target: "/b", action: "add file" },
    ], 0),
    [
      { target: "/m/notes", action: "remove file", count: 2 },
      { target: "/", action: "add file", count: 2 },
    ],
  );
});

Deno.test("restore() gives each plugin its artifact paths, and makes its entries only when it reads them", async () => {
  await using dir = await tempDir();
  const bytes = new TextEncoder().encode("x");
  const seen: Record<string, { paths: readonly string[] | undefined; lazy: boolean }[]> = {};
  const plugin = (name: string, read: boolean): CapturePlugin => {
    const record = (ctx: { artifacts: unknown; artifactPaths?: readonly string[] }): void => {
      const d = Object.getOwnPropertyDescriptor(ctx, "artifacts");
      (seen[name] ??= []).push({ paths: ctx.artifactPaths, lazy: d?.get !== undefined });
      if (read) {
        const entries = ctx.artifacts as { path: string; sha256: string }[];
        assert.deepEqual(entries.map((a) => a.path), ctx.artifactPaths);
        assert.ok(entries.every((a) => /^[0-9a-f]{64}$/.test(a.sha256)));
      }
    };
    return {
      name,
      owns: (path) => path.startsWith(`${name}/`),
      capture: () =>
        Promise.resolve({
          artifacts: ["b.txt", "a.txt"].map((f) => ({
            path: `${name}/${f}`,
            kind: "file" as const,
            size: bytes.length,
            open: () => Promise.resolve(new Blob([bytes]).stream()),
          })),
        }),
      plan: (ctx) => {
        record(ctx);
        return Promise.resolve([]);
      },
      async restore(ctx) {
        record(ctx);
        await Deno.writeFile(await ctx.stage({ path: `${dir.path}/${name}`, type: "file" }), bytes);
      },
    };
  };
  const store = await openStore(`${dir.path}/store`);
  try {
    const snap = createSnapshotter({
      store,
      agent: "a1",
      captures: [plugin("one", true), plugin("two", false)],
    });
    const { info } = await snap.snapshot({ redact: false });
    await snap.restore(info.id, { noPreSnapshot: true });
    for (const name of ["one", "two"]) {
      assert.deepEqual(seen[name], [
        { paths: [`${name}/a.txt`, `${name}/b.txt`], lazy: true },
        { paths: [`${name}/a.txt`, `${name}/b.txt`], lazy: true },
      ]);
    }
  } finally {
    await store.close();
  }
});
