import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { IndexBuilder, IndexFileWriter, overlaySource } from "./_git_objects.ts";

interface Entry {
  path: Uint8Array;
  mode: number;
  oid: string;
  stat?: Deno.FileInfo;
}

/** The index serializer IndexBuilder replaced (entries held whole, then sorted and encoded). */
function reference(entries: Entry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.path, b.path));
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(12);
  head.set(new TextEncoder().encode("DIRC"));
  new DataView(head.buffer).setUint32(4, 2);
  new DataView(head.buffer).setUint32(8, sorted.length);
  parts.push(head);
  const u32 = (n: number | null | undefined): number => Math.max(0, Math.floor(n ?? 0)) >>> 0;
  for (const e of sorted) {
    const len = 62 + e.path.byteLength;
    const padded = Math.ceil((len + 1) / 8) * 8;
    const buf = new Uint8Array(padded);
    const v = new DataView(buf.buffer);
    const s = e.stat;
    const ctime = s?.ctime?.getTime() ?? 0;
    const mtime = s?.mtime?.getTime() ?? 0;
    v.setUint32(0, u32(ctime / 1000));
    v.setUint32(4, u32((ctime % 1000) * 1e6));
    v.setUint32(8, u32(mtime / 1000));
    v.setUint32(12, u32((mtime % 1000) * 1e6));
    v.setUint32(16, u32(s?.dev));
    v.setUint32(20, u32(s?.ino));
    v.setUint32(24, e.mode);
    v.setUint32(28, u32(s?.uid));
    v.setUint32(32, u32(s?.gid));
    v.setUint32(36, u32(s?.size));
    buf.set(Buffer.from(e.oid, "hex"), 40);
    v.setUint16(60, Math.min(e.path.byteLength, 0xfff));
    buf.set(e.path, 62);
    parts.push(buf);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash("sha1").update(body).digest()]);
}

Deno.test("IndexBuilder: same bytes as encoding the whole entry list, in any order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    const stat = Deno.lstatSync(`${dir}/f`);
    const enc = new TextEncoder();
    const names = [
      "a",
      "a-b",
      "a/b",
      "a/b/c.md",
      "ab",
      "B",
      "z".repeat(0xfff), // length field capped
      "y".repeat(0xfff + 9), // longer than the cap
      "y".repeat(0xffe),
      "\u00e9t\u00e9.md",
      "notes/2026/11/25.md",
    ];
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const entries: Entry[] = names.map((n, i) => {
      const oid = createHash("sha1").update(n).digest("hex");
      return {
        path: enc.encode(n),
        mode: i % 3 === 0 ? 0o100755 : i % 3 === 1 ? 0o100644 : 0o120000,
        oid: i % 2 ? oid.toUpperCase() : oid,
        ...(i % 2 === 0 ? { stat } : {}),
      };
    });
    for (let round = 0; round < 5; round++) {
      const shuffled = entries.map((e) => ({ e, k: rand() })).sort((a, b) => a.k - b.k).map((x) =>
        x.e
      );
      const b = new IndexBuilder();
      for (const e of shuffled) b.add(e.path, e.mode, e.oid, e.stat);
      assert.deepStrictEqual(b.length, entries.length);
      assert.deepStrictEqual(b.build(), new Uint8Array(reference(shuffled)));
    }
    // Many entries: the buffer grows.
    const many: Entry[] = [];
    for (let i = 0; i < 3000; i++) {
      many.push({
        path: enc.encode(`dir${i % 17}/file-${(i * 7919) % 3000}.md`),
        mode: 0o100644,
        oid: createHash("sha1").update(String(i)).digest("hex"),
      });
    }
    const b = new IndexBuilder();
    for (const e of many) b.add(e.path, e.mode, e.oid);
    assert.deepStrictEqual(b.build(), new Uint8Array(reference(many)));
    assert.deepStrictEqual(new IndexBuilder().build(), new Uint8Array(reference([])));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IndexFileWriter: the bytes IndexBuilder makes, written as entries come in path order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    const stat = Deno.lstatSync(`${dir}/f`);
    const enc = new TextEncoder();
    const entries: Entry[] = [];
    // ~2.4 MB of entries: the 1 MiB buffer is flushed twice; long paths, stat or not.
    for (let i = 0; i < 24_000; i++) {
      const name = i % 5000 === 0 ? "x".repeat(0xfff + i % 3) : `n${i % 7}`;
      entries.push({
        path: enc.encode(`d${String(i).padStart(6, "0")}/${name}.md`),
        mode: i % 2 ? 0o100644 : 0o100755,
        oid: createHash("sha1").update(String(i)).digest("hex"),
        ...(i % 3 === 0 ? { stat } : {}),
      });
    }
    for (const list of [entries, entries.slice(0, 1), []]) {
      const w = new IndexFileWriter(`${dir}/index`);
      for (const e of list) assert.equal(w.add(e.path, e.mode, e.oid, e.stat), true);
      w.finish();
      assert.equal(w.length, list.length);
      assert.deepStrictEqual(
        await Deno.readFile(`${dir}/index`),
        new Uint8Array(reference(list)),
        `${list.length} entries`,
      );
    }
    // Out of order, or twice: refused, nothing written for it; discard() removes the file.
    const w = new IndexFileWriter(`${dir}/index2`);
    const [a, b] = [entries[0]!, entries[1]!];
    assert.equal(w.add(b.path, b.mode, b.oid), true);
    assert.equal(w.add(a.path, a.mode, a.oid), false);
    assert.equal(w.add(b.path, b.mode, b.oid), false);
    assert.equal(w.length, 1);
    w.discard();
    assert.equal(await Deno.stat(`${dir}/index2`).catch(() => undefined), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("overlaySource().readView: the overlay's object first, then the base's view, then its readSync", () => {
  const enc = new TextEncoder();
  const mine = { type: "blob" as const, body: enc.encode("mine") };
  const viewed = { type: "blob" as const, body: enc.encode("view") };
  const synced = { type: "blob" as const, body: enc.encode("sync") };
  const overlay = new Map([["a".repeat(40), mine]]);
  const base = {
    read: () => Promise.reject(new Error("not used")),
    readSync: (oid: string) => (oid === "c".repeat(40) ? synced : undefined),
  };
  const withView = overlaySource(overlay, {
    ...base,
    readView: (oid: string) => (oid === "b".repeat(40) ? viewed : undefined),
  });
  assert.equal(withView.readView!("a".repeat(40)), mine);
  assert.equal(withView.readView!("b".repeat(40)), viewed);
  assert.equal(withView.readView!("c".repeat(40)), synced);
  assert.equal(withView.readView!("d".repeat(40)), undefined);
  const without = overlaySource(overlay, base);
  assert.equal(without.readView!("c".repeat(40)), synced);
});
