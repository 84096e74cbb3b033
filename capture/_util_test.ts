import assert from "node:assert/strict";
import fc from "fast-check";
import { assertSafeRelative, unsafeRelative } from "./_util.ts";
import { UnsafeBundleError } from "../errors.ts";

Deno.test("unsafeRelative() refuses exactly what the plain component check refuses (property)", () => {
  const plain = (rel: string): boolean =>
    rel.startsWith("/") ||
    rel.split("/").some((p) => p === "" || p === "." || p === ".." || p.includes("\0"));
  for (
    const p of [
      "",
      "/",
      "/a",
      "a//b",
      "a/",
      ".",
      "./a",
      "a/.",
      "..",
      "a/../b",
      "...",
      ".a",
      "a.",
      "a\0b",
      "ok/x.md",
    ]
  ) {
    assert.equal(unsafeRelative(p), plain(p), JSON.stringify(p));
  }
  const char = fc.constantFrom("/", ".", "a", "\0", "é");
  fc.assert(
    fc.property(fc.array(char, { maxLength: 10 }).map((cs) => cs.join("")), (p) => {
      assert.equal(unsafeRelative(p), plain(p), JSON.stringify(p));
    }),
    { numRuns: 5000 },
  );
  assert.throws(
    () => assertSafeRelative("a/../b", "memdir/a/../b"),
    (e) => e instanceof UnsafeBundleError && e.rule === "path_escape",
  );
  assertSafeRelative("a/b.md", "memdir/a/b.md");
});
