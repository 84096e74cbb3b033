import assert from "node:assert/strict";
import fc from "fast-check";
import { checkPath, comparePaths, PathSet, SortedPaths } from "./_paths.ts";

const rule = (p: string, maxLength = 64, maxDepth = 4) => checkPath(p, maxLength, maxDepth)?.rule;

Deno.test("checkPath() refuses each broken rule, the first in rule order when several break", () => {
  assert.equal(rule("memdir/a.md"), undefined);
  assert.equal(rule(""), "path_invalid");
  assert.equal(rule("/etc/passwd"), "path_absolute");
  assert.equal(rule("a/../b"), "path_escape");
  assert.equal(rule(".."), "path_escape");
  assert.equal(rule("a/..b"), undefined);
  assert.equal(rule("a/..."), undefined);
  assert.equal(rule("a\\b"), "path_invalid");
  assert.equal(rule("a\x00b"), "path_invalid");
  assert.equal(rule("a\x1fb"), "path_invalid");
  assert.equal(rule("a\x7fb"), "path_invalid");
  assert.equal(rule("C:/x"), "path_absolute");
  assert.equal(rule("z:"), "path_absolute");
  assert.equal(rule("1:/x"), undefined);
  assert.equal(rule("a//b"), "path_not_normalized");
  assert.equal(rule("a/"), "path_not_normalized");
  assert.equal(rule("./a"), "path_not_normalized");
  assert.equal(rule("a/./b"), "path_not_normalized");
  // order: escape before invalid before drive letter before not normalized
  assert.equal(rule("C:/./a\\/.."), "path_escape");
  assert.equal(rule("C:/./a\\"), "path_invalid");
  assert.equal(rule("C:/./a"), "path_absolute");
  assert.equal(rule("a/./" + "x".repeat(100)), "path_not_normalized");
  assert.equal(rule("a/b/c/d/e"), "max_path_depth");
  assert.equal(rule("a/b/c/d"), undefined);
  assert.equal(rule("x".repeat(65) + "/a/b/c/d"), "max_path_length");
});

Deno.test("checkPath() counts the length in UTF-8 bytes, lone surrogates as U+FFFD", () => {
  const hi = String.fromCharCode(0xd800);
  const lo = String.fromCharCode(0xdc00);
  for (const p of ["é", "\u0800", "\u{1f600}", hi, lo, `a${hi}b`, `${hi}\u{1f600}`, `${lo}${hi}`]) {
    const bytes = new TextEncoder().encode(p).length;
    assert.equal(checkPath(p, bytes, 4), undefined, JSON.stringify(p));
    assert.equal(checkPath(p, bytes - 1, 4)?.rule, "max_path_length", JSON.stringify(p));
  }
});

Deno.test("PathSet.add() refuses duplicates and file/directory conflicts in any order", () => {
  const s = new PathSet();
  assert.equal(s.add("a/b/c"), undefined);
  assert.equal(s.add("a/b/d"), undefined);
  assert.equal(s.add("a/e"), undefined);
  assert.equal(s.add("a/b/c")?.rule, "duplicate");
  assert.deepEqual(s.add("a/b"), {
    rule: "path_conflict",
    state: "is both a file and a directory",
  });
  assert.deepEqual(s.add("a/e/f/g"), {
    rule: "path_conflict",
    state: 'is inside "a/e", which is a file',
  });
  // the refused path left nothing behind
  assert.equal(s.add("a/e/f")?.state, 'is inside "a/e", which is a file');
  assert.equal(s.add("z/y"), undefined);
  assert.equal(s.add("a/b/c/x")?.state, 'is inside "a/b/c", which is a file');
  assert.equal(s.add("z")?.rule, "path_conflict");
});

Deno.test("SortedPaths.add() refuses duplicates and paths inside files, keeping a shallow stack", () => {
  const s = new SortedPaths();
  assert.equal(s.add("a"), undefined);
  assert.equal(s.add("a")?.rule, "duplicate");
  assert.equal(s.add("a-b"), undefined); // "-" and "." sort before "/": "a" is still open
  assert.equal(s.add("a.c"), undefined);
  assert.deepEqual(s.add("a/x"), {
    rule: "path_conflict",
    state: 'is inside "a", which is a file',
  });
  assert.equal(s.add("a/x/y")?.state, 'is inside "a", which is a file');
  assert.equal(s.add("b/c"), undefined);
  assert.equal(s.add("b/c/d")?.state, 'is inside "b/c", which is a file');
  assert.equal(s.add("b/d"), undefined);
  assert.throws(() => s.add("b/a"), RangeError);
  const many = new SortedPaths();
  for (let i = 0; i < 10_000; i++) {
    assert.equal(many.add(`d/n${String(i).padStart(5, "0")}.md`), undefined);
    assert.ok(many.depth <= 1, `depth ${many.depth} after ${i + 1} paths`);
  }
});

Deno.test("SortedPaths agrees with PathSet on any sorted list of paths (property)", () => {
  const segment = fc.constantFrom("a", "b", "a.b", "a-b", "a b", "é", "😀", "Z", "a.b-c");
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"));
  fc.assert(
    fc.property(fc.array(path, { maxLength: 40 }), (paths) => {
      paths.sort(comparePaths);
      const sorted = new SortedPaths();
      const any = new PathSet();
      for (const p of paths) assert.deepEqual(sorted.add(p), any.add(p), p);
    }),
    { numRuns: 500 },
  );
});
