import assert from "node:assert/strict";
import { fileStream, streamOf } from "./_ref.ts";
import { NotFoundError } from "../errors.ts";

async function collect(
  s: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const parts: Uint8Array[] = [];
  for await (const p of s) parts.push(p);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { bytes, sizes: parts.map((p) => p.length) };
}

/** A file over `data` that returns at most `max` bytes per read and counts closes. */
function fakeFile(data: Uint8Array, max: number, failAt = Infinity) {
  let pos = 0;
  const f = {
    closes: 0,
    read(p: Uint8Array): Promise<number | null> {
      if (f.closes > 0) return Promise.reject(new Deno.errors.BadResource("closed"));
      if (pos >= failAt) return Promise.reject(new Error("EIO"));
      if (pos >= data.length) return Promise.resolve(null);
      const n = Math.min(p.length, max, data.length - pos);
      p.set(data.subarray(pos, pos + n));
      pos += n;
      return Promise.resolve(n);
    },
    close() {
      f.closes++;
    },
  };
  return f;
}

Deno.test("fileStream() gives a file's bytes in full chunks (short reads joined) and closes it once", async () => {
  for (const size of [0, 1, 63, 64, 65, 128, 64 * 3 + 5]) {
    for (const max of [7, 64, 1000]) {
      const data = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
      const file = fakeFile(data, max);
      const { bytes, sizes } = await collect(fileStream(file, 64));
      assert.deepEqual(bytes, data, `size ${size}`);
      assert.ok(sizes.slice(0, -1).every((n) => n === 64), `size ${size}: ${sizes}`);
      assert.ok(sizes.every((n) => n > 0));
      assert.equal(file.closes, 1);
    }
  }
});

Deno.test("fileStream() closes the file once when the reader cancels", async () => {
  const file = fakeFile(new Uint8Array(1000), 1000);
  const reader = fileStream(file, 100).getReader();
  assert.equal((await reader.read()).value?.length, 100);
  await reader.cancel();
  assert.equal(file.closes, 1);
  const unread = fakeFile(new Uint8Array(10), 10);
  await fileStream(unread, 100).cancel();
  assert.equal(unread.closes, 1);
});

Deno.test("fileStream() errors the stream when a read fails, and closes the file", async () => {
  const file = fakeFile(new Uint8Array(1000), 50, 300);
  await assert.rejects(collect(fileStream(file, 100)), /EIO/);
  assert.equal(file.closes, 1);
});

Deno.test("fileStream() reads a real file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = new Uint8Array(300_000).map((_, i) => i & 0xff);
    await Deno.writeFile(`${dir}/f`, data);
    assert.deepEqual((await collect(fileStream(await Deno.open(`${dir}/f`)))).bytes, data);
    assert.deepEqual((await collect(await streamOf(undefined, `${dir}/f`, {}))).bytes, data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("streamOf() a missing bundle path is a NotFoundError", async () => {
  await assert.rejects(streamOf(undefined, "/nonexistent/x.msnap", {}), NotFoundError);
});

Deno.test("streamOf() opens a store's snapshot by id, prefix or latest (filtered), and paths", async () => {
  const { LocalStore } = await import("../store/local_store.ts");
  const { createSnapshotter } = await import("../snapshotter.ts");
  const { statePlugin } = await import("../capture/state.ts");
  const dir = await Deno.makeTempDir();
  const store = await LocalStore.open(`${dir}/store`);
  try {
    await Deno.writeTextFile(`${dir}/s.json`, "{}");
    const snap = (agent: string) =>
      createSnapshotter({
        store,
        agent,
        captures: [statePlugin({ files: { s: `${dir}/s.json` } })],
      }).snapshot();
    const a = await snap("a");
    const b = await snap("b");
    const bytes = async (s: ReadableStream<Uint8Array>) => (await collect(s)).bytes;
    const fileA = await Deno.readFile(a.info.path);
    const fileB = await Deno.readFile(b.info.path);
    assert.deepEqual(await bytes(await streamOf(store, a.info.id, {})), fileA);
    assert.deepEqual(await bytes(await streamOf(store, a.info.id.slice(0, 20), {})), fileA);
    await assert.rejects(streamOf(store, "latest", {}), NotFoundError); // two agents: ambiguous
    assert.deepEqual(await bytes(await streamOf(store, "latest", { agent: "b" })), fileB);
    assert.deepEqual(await bytes(await streamOf(store, "latest", { agent: "a" })), fileA);
    // The agent filter applies to latest only: an id names its snapshot whatever the agent.
    assert.deepEqual(await bytes(await streamOf(store, b.info.id, { agent: "a" })), fileB);
    assert.deepEqual(await bytes(await streamOf(store, a.info.path, {})), fileA);
    await assert.rejects(streamOf(store, "20990101T000000000Z-00000000", {}), NotFoundError);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fileStream() fills each buffer of a BYOB reader (short reads joined), reusing it", async () => {
  const data = new Uint8Array(1000).map((_, i) => (i * 13) & 0xff);
  const file = fakeFile(data, 70);
  const reader = fileStream(file, 64).getReader({ mode: "byob" });
  let buf = new ArrayBuffer(300);
  const sizes: number[] = [];
  const got: number[] = [];
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buf));
    if (done) break;
    sizes.push(value.length);
    got.push(...value);
    buf = value.buffer; // the same memory, handed back for the next read
  }
  assert.deepEqual(sizes, [300, 300, 300, 100]);
  assert.deepEqual(new Uint8Array(got), data);
  assert.equal(file.closes, 1);
});
