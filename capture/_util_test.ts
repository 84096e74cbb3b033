import assert from "node:assert/strict";
import fc from "fast-check";
import { assertSafeRelative, joinFlat, readFileInto, unsafeRelative } from "./_util.ts";
import { UnsafeBundleError } from "../errors.ts";
import { tempDir } from "../tests/_tools.ts";

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

Deno.test("readFileInto() reads a file whole, and sees it grown or shrunk with an expected size", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/f`;
  const data = new Uint8Array(70_000).map((_, i) => (i * 31) & 255);
  await Deno.writeFile(path, data);
  // Room for one byte more than the expected size, as the bundle writer gives.
  const into = new Uint8Array(data.length + 1);
  for (const expected of [undefined, data.length]) {
    into.fill(7);
    assert.equal(readFileInto(path, into, expected), data.length);
    assert.deepEqual(into.subarray(0, data.length), data);
    assert.equal(into[data.length], 7, "nothing past the file");
  }
  // Grown since the listing: the extra byte is read, so the writer sees the change.
  await Deno.writeFile(path, new Uint8Array(data.length + 5));
  assert.equal(readFileInto(path, into, data.length), data.length + 1);
  // Shrunk: fewer bytes.
  await Deno.writeFile(path, new Uint8Array(10));
  assert.equal(readFileInto(path, into, data.length), 10);
  // Without room to spare, the buffer is filled.
  await Deno.writeFile(path, data);
  assert.equal(readFileInto(path, new Uint8Array(100), 100), 100);
  assert.equal(readFileInto(path, new Uint8Array(0), 0), 0);
});

Deno.test("readFileInto() goes on after a short read that stops before the expected size (a pipe)", async () => {
  await using dir = await tempDir();
  const fifo = `${dir.path}/p`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success);
  // Two writes with a pause between them: the first read returns "ab" only.
  const writer = new Deno.Command("sh", {
    args: [
      "-c",
      `printf ab > ${fifo}.tmp; exec 3>${fifo}; cat ${fifo}.tmp >&3; sleep 0.3; printf cdef >&3`,
    ],
  }).spawn();
  const into = new Uint8Array(7);
  const n = readFileInto(fifo, into, 6);
  assert.equal(n, 6);
  assert.equal(new TextDecoder().decode(into.subarray(0, n)), "abcdef");
  assert.ok((await writer.status).success);
});

Deno.test("joinFlat() is the concatenation", () => {
  for (
    const [a, b] of [["", ""], ["memdir/", "a/b.md"], ["git/objects/", "ab/" + "c".repeat(38)], [
      "é/",
      "🧠",
    ]]
  ) {
    assert.equal(joinFlat(a!, b!), a! + b!);
  }
});
