import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { TrackedPaths } from "./_git_repo.ts";

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

Deno.test("TrackedPaths answers has() and hasDir() as sets of the paths and their directories do (property)", () => {
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
        const t = TrackedPaths.fromIndex(indexOf(paths))!;
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

Deno.test("TrackedPaths: no paths, and an invalid index", () => {
  const none = TrackedPaths.empty();
  assert.equal(none.size, 0);
  assert.equal(none.has("a"), false);
  assert.equal(none.hasDir("a"), false);
  const index = indexOf(["a/b.md"]);
  assert(TrackedPaths.fromIndex(index)!.hasDir("a"));
  index[20]! ^= 1; // the checksum no longer matches
  assert.equal(TrackedPaths.fromIndex(index), undefined);
});
