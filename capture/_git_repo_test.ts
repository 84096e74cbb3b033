import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { parseIndex, parseIndexFile, TrackedPaths } from "./_git_repo.ts";
import { tempDir } from "../tests/_tools.ts";

const enc = new TextEncoder();

/** A version 2 index listing `paths` in the order given (zero stat data and object ids). */
function indexOf(paths: string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(12);
  const hv = new DataView(head.buffer);
  hv.setUint32(0, 0x44495243); // "DIRC"
  hv.setUint32(4, 2);
  hv.setUint32(8, paths.length);
  parts.push(head);
  for (const p of paths) {
    const name = enc.encode(p);
    const len = Math.ceil((62 + name.length + 1) / 8) * 8;
    const e = new Uint8Array(len);
    new DataView(e.buffer).setUint16(60, Math.min(name.length, 0xfff));
    e.set(name, 62);
    parts.push(e);
  }
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  const sum = createHash("sha1").update(body).digest();
  const out = new Uint8Array(body.length + 20);
  out.set(body);
  out.set(sum, body.length);
  return out;
}

/** What a set of the paths and of their parent directories answers. */
function reference(paths: string[]) {
  const files = new Set(paths);
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) dirs.add(p.slice(0, i));
  }
  return { files, dirs };
}

Deno.test("TrackedPaths answers has() and hasDir() as sets of the paths and their directories do (property)", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/index`;
  const seg = fc.array(fc.constantFrom("a", "b", "B", ".", "-", "é", "🧠", "z", "\u00ff", "~"), {
    minLength: 1,
    maxLength: 3,
  }).map((cs) => cs.join(""));
  const path = fc.array(seg, { minLength: 1, maxLength: 4 }).map((ss) => ss.join("/"));
  fc.assert(
    fc.property(
      fc.uniqueArray(path, { maxLength: 30 }),
      fc.array(path, { maxLength: 20 }),
      (paths, queries) => {
        // Any order: an index out of order is sorted (git's are already).
        Deno.writeFileSync(file, indexOf(paths));
        const t = TrackedPaths.fromIndexFile(file)!;
        const ref = reference(paths);
        assert.equal(t.size, paths.length);
        const sorted = [...paths].sort((x, y) => Buffer.compare(enc.encode(x), enc.encode(y)));
        assert.deepEqual([...t], sorted);
        for (const q of [...paths, ...queries, ...ref.dirs]) {
          assert.equal(t.has(q), ref.files.has(q), `has ${q}`);
          assert.equal(t.hasDir(q), ref.dirs.has(q), `hasDir ${q}`);
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("TrackedPaths: no paths, and an invalid index", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/index`;
  const none = TrackedPaths.empty();
  assert.equal(none.size, 0);
  assert.equal(none.has("a"), false);
  assert.equal(none.hasDir("a"), false);
  const index = indexOf(["a/b.md"]);
  Deno.writeFileSync(file, index);
  assert(TrackedPaths.fromIndexFile(file)!.hasDir("a"));
  index[20]! ^= 1; // the checksum no longer matches
  Deno.writeFileSync(file, index);
  assert.equal(TrackedPaths.fromIndexFile(file), undefined);
});

/** A version 4 index of `paths` (prefix-compressed names, no padding). */
function index4Of(paths: string[]): Uint8Array {
  const parts: number[] = [];
  const push32 = (v: number) => parts.push(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  parts.push(0x44, 0x49, 0x52, 0x43);
  push32(4);
  push32(paths.length);
  let prev = new Uint8Array(0);
  for (const p of paths) {
    const name = enc.encode(p);
    let common = 0;
    while (common < prev.length && common < name.length && prev[common] === name[common]) common++;
    const e = new Array(62).fill(0);
    e[60] = Math.min(name.length, 0xfff) >> 8;
    e[61] = Math.min(name.length, 0xfff) & 255;
    parts.push(...e);
    // git's offset varint of the bytes to drop
    let drop = prev.length - common;
    const v = [drop & 0x7f];
    while ((drop >>= 7) > 0) v.unshift((--drop & 0x7f) | 0x80);
    parts.push(...v, ...name.subarray(common), 0);
    prev = name;
  }
  const body = new Uint8Array(parts);
  const out = new Uint8Array(body.length + 20);
  out.set(body);
  out.set(createHash("sha1").update(body).digest(), body.length);
  return out;
}

/** What a parse saw: every path visited (hex) and the extensions, or undefined. */
function seen(parse: (visit: (p: Uint8Array) => void) => { extensions: string[] } | undefined) {
  const paths: string[] = [];
  const r = parse((p) => paths.push(Buffer.from(p).toString("hex")));
  return r === undefined ? undefined : { paths, extensions: r.extensions };
}

Deno.test("parseIndexFile() through any window reads what parseIndex() reads of the bytes, damaged or not (property)", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/index`;
  const name = fc.array(fc.constantFrom("a", "b/", "é", "x".repeat(70), "🧠", "/c"), {
    minLength: 1,
    maxLength: 5,
  }).map((cs) => cs.join(""));
  fc.assert(
    fc.property(
      fc.uniqueArray(name, { maxLength: 12 }),
      fc.boolean(),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.constantFrom(64, 100, 256, 1 << 20),
      (paths, v4, flips, cut, window) => {
        let bytes = v4 ? index4Of(paths) : indexOf(paths);
        // An extension after the entries (signature, size, body), then the checksum again.
        const ext = new Uint8Array([0x54, 0x52, 0x45, 0x45, 0, 0, 0, 3, 1, 2, 3]);
        const body = new Uint8Array(bytes.length - 20 + ext.length);
        body.set(bytes.subarray(0, bytes.length - 20));
        body.set(ext, bytes.length - 20);
        bytes = new Uint8Array(body.length + 20);
        bytes.set(body);
        bytes.set(createHash("sha1").update(body).digest(), body.length);
        // Damage after the checksum is recomputed, so that the walk itself meets it.
        const damaged = flips.length > 0 || cut !== undefined;
        for (const [at, x] of flips) bytes[at % bytes.length]! ^= x;
        if (cut !== undefined) bytes = bytes.subarray(0, cut % (bytes.length + 1));
        if (damaged && bytes.length >= 20) {
          const end = bytes.length - 20;
          bytes = bytes.slice();
          bytes.set(createHash("sha1").update(bytes.subarray(0, end)).digest(), end);
        }
        Deno.writeFileSync(file, bytes);
        const want = seen((v) => parseIndex(bytes, v));
        if (!damaged) {
          assert.deepEqual(
            want?.paths,
            paths.map((p) => Buffer.from(enc.encode(p)).toString("hex")),
          );
          assert.deepEqual(want?.extensions, ["TREE"]);
        }
        assert.deepEqual(seen((v) => parseIndexFile(file, v, window)), want);
      },
    ),
    { numRuns: 400 },
  );
});
