import assert from "node:assert/strict";
import { openBundleRef } from "./snapshotter.ts";
import { NotFoundError } from "./errors.ts";
import type { Store } from "./store/types.ts";
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
