import assert from "node:assert/strict";
import { MemsnapError } from "../errors.ts";
import fc from "fast-check";
import {
  listObjectStore,
  objectArtifact,
  placeObjectStore,
  unsafeIndexPath,
} from "./_git_objects_dir.ts";
import { tempDir } from "../tests/_tools.ts";

const HEX38 = "1".repeat(38);

/** A fake object store: two loose objects, a pack with its index, and what git leaves around. */
async function fakeStore(gitdir: string): Promise<void> {
  const o = `${gitdir}/objects`;
  await Deno.mkdir(`${o}/ab`, { recursive: true });
  await Deno.mkdir(`${o}/cd`);
  await Deno.mkdir(`${o}/pack`);
  await Deno.mkdir(`${o}/info`);
  await Deno.writeTextFile(`${o}/ab/${HEX38}`, "loose one");
  await Deno.writeTextFile(`${o}/cd/${"2".repeat(38)}`, "loose two!");
  await Deno.writeTextFile(`${o}/ab/tmp_obj_x`, "git's temp file");
  await Deno.writeTextFile(`${o}/info/packs`, "P pack\n");
  const pack = `pack-${"3".repeat(40)}`;
  await Deno.writeTextFile(`${o}/pack/${pack}.pack`, "PACK....");
  // index v2: magic, version, 256 fan-out entries; the last one counts the objects
  const idx = new Uint8Array(8 + 256 * 4 + 40);
  const v = new DataView(idx.buffer);
  v.setUint32(0, 0xff744f63);
  v.setUint32(4, 2);
  v.setUint32(8 + 255 * 4, 7);
  await Deno.writeFile(`${o}/pack/${pack}.idx`, idx);
  await Deno.writeTextFile(`${o}/pack/${pack}.keep`, "");
  await Deno.writeTextFile(`${o}/pack/pack-${"4".repeat(40)}.pack`, "no index: not complete");
  await Deno.writeTextFile(`${o}/pack/tmp_pack_y`, "");
}

Deno.test("listObjectStore() lists loose objects and complete packs, and counts objects", async () => {
  await using tmp = await tempDir();
  await fakeStore(tmp.path);
  const store = listObjectStore(tmp.path);
  assert.deepEqual(store.files.map((f) => [f.rel, f.size]).sort(), [
    [`ab/${HEX38}`, 9],
    [`cd/${"2".repeat(38)}`, 10],
    [`pack/pack-${"3".repeat(40)}.idx`, 8 + 256 * 4 + 40],
    [`pack/pack-${"3".repeat(40)}.pack`, 8],
  ]);
  assert.equal(store.objects, 2 + 7);
  assert.deepEqual(listObjectStore(`${tmp.path}/none`), { files: [], objects: 0 });
});

Deno.test("objectArtifact() reads the file, and fails clearly when it is gone", async () => {
  await using tmp = await tempDir();
  await fakeStore(tmp.path);
  const file = listObjectStore(tmp.path).files.find((f) => f.rel.startsWith("ab/"))!;
  const a = objectArtifact(file);
  assert.equal(a.path, `git/objects/ab/${HEX38}`);
  assert.equal(a.kind, "git-object");
  const into = new Uint8Array(a.size + 1);
  assert.equal(a.readInto!(into), 9);
  assert.equal(new TextDecoder().decode(into.subarray(0, 9)), "loose one");
  assert.equal(await new Response(await a.open()).text(), "loose one");
  await Deno.remove(file.root + file.rel);
  for (const read of [() => a.readInto!(into), () => a.open()]) {
    await assert.rejects(
      async () => await read(),
      (e) => e instanceof MemsnapError && /disappeared during the snapshot/.test(e.message),
    );
  }
});

Deno.test("placeObjectStore() moves the store in one rename, or links it file by file", async () => {
  for (const movable of [true, false]) {
    await using tmp = await tempDir();
    await fakeStore(`${tmp.path}/payload/git`);
    // The plugin's paths: the object files among others, which are not placed.
    const paths = [
      "git/HEAD",
      ...listObjectStore(`${tmp.path}/payload/git`).files.map((f) => `git/objects/${f.rel}`),
      "git/refs/heads/main",
    ];
    await Deno.writeTextFile(`${tmp.path}/payload/git/HEAD`, "ref: refs/heads/main\n");
    await Deno.mkdir(`${tmp.path}/repo`);
    placeObjectStore(
      `${tmp.path}/payload`,
      paths,
      `${tmp.path}/repo/objects`,
      movable,
      new AbortController().signal,
    );
    assert.equal(await Deno.readTextFile(`${tmp.path}/repo/objects/ab/${HEX38}`), "loose one");
    const left = await Deno.stat(`${tmp.path}/payload/git/objects`).then(() => true, () => false);
    assert.equal(left, !movable);
    assert.equal(await Deno.stat(`${tmp.path}/repo/HEAD`).then(() => true, () => false), false);
    if (!movable) {
      // only the listed files, not what else the payload dir might hold
      assert.equal(
        await Deno.stat(`${tmp.path}/repo/objects/ab/tmp_obj_x`).then(() => true, () => false),
        false,
      );
    }
  }
});

Deno.test("unsafeIndexPath() refuses exactly what the plain component check refuses of the decoded path (property)", () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const plain = (p: string): boolean =>
    p.startsWith("/") ||
    p.split("/").some((c) => c === "" || c === "." || c === ".." || c.toLowerCase() === ".git");
  for (
    const p of [
      "",
      "/a",
      "a//b",
      "a/",
      ".",
      "a/./b",
      "..",
      "a/..",
      ".git",
      "a/.GIT/b",
      ".Git",
      ".gıt",
      ".GİT",
      ".gitx",
      "x.git",
      "notes/a.md",
      "...",
      ".g",
    ]
  ) {
    assert.equal(unsafeIndexPath(enc.encode(p)), plain(p), JSON.stringify(p));
  }
  const char = fc.constantFrom("/", ".", "g", "i", "t", "G", "I", "T", "ı", "İ", "a", "\u212a");
  fc.assert(
    fc.property(fc.array(char, { maxLength: 12 }).map((cs) => cs.join("")), (p) => {
      assert.equal(unsafeIndexPath(enc.encode(p)), plain(p), JSON.stringify(p));
    }),
    { numRuns: 5000 },
  );
  // Any bytes, UTF-8 or not: the answer for what they decode to (as git's path would show).
  const byte = fc.constantFrom(
    0x2f,
    0x2e,
    0x67,
    0x47,
    0x69,
    0x49,
    0x74,
    0x54,
    0x61,
    0xc4,
    0xb1,
    0xb0,
    0xe2,
    0x84,
    0xaa,
    0xff,
    0x80,
  );
  fc.assert(
    fc.property(fc.array(byte, { maxLength: 12 }), (bs) => {
      const b = new Uint8Array(bs);
      assert.equal(unsafeIndexPath(b), plain(dec.decode(b)), JSON.stringify(bs));
    }),
    { numRuns: 5000 },
  );
});
