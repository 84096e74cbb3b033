import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ArtifactTable,
  artifactTableOf,
  artifactTotals,
  lazyManifest,
  listRows,
  lowerBoundRow,
  rowsOf,
} from "./_artifact_table.ts";
import { encodeManifest, manifestChunks } from "./_manifest.ts";
import { canonicalJson } from "./canonical_json.ts";
import { hex } from "./_io.ts";
import { comparePaths } from "./_paths.ts";
import { readManifest, unchangedManifest } from "./read_manifest.ts";
import { extractBundle } from "./extract_bundle.ts";
import { openBundleFile } from "./open_bundle_file.ts";
import { writeBundle } from "./write_bundle.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import { concat, source, testHeader, testManifestHead } from "../tests/bundle_helpers.ts";

interface Row {
  kind: string;
  path: string;
  size: number;
  mode: number | undefined;
  digest: Uint8Array;
}

/** The manifest entry of a row, keys in canonical order: a mode when it has one (0644 too). */
function plainEntry(r: Row): ManifestArtifact {
  const sha256 = hex(r.digest);
  return r.mode !== undefined
    ? { kind: r.kind, mode: r.mode, path: r.path, sha256, size: r.size }
    : { kind: r.kind, path: r.path, sha256, size: r.size };
}

function tableOf(rows: Row[]): ArtifactTable {
  const t = new ArtifactTable();
  for (const r of rows) {
    const row = t.push(r.kind, r.path, r.size, r.mode);
    t.digestBlock(row).set(r.digest, t.digestOffset(row));
  }
  return t;
}

const rowArb: fc.Arbitrary<Row> = fc.record({
  kind: fc.constantFrom("file", "git-object", "sqlite", "state", 'custom "kind" é'),
  path: fc.string({ minLength: 1, maxLength: 30, unit: "grapheme" }),
  size: fc.oneof(fc.nat(), fc.constantFrom(0x3fffffff, 0x40000000, Number.MAX_SAFE_INTEGER)),
  mode: fc.option(fc.constantFrom(0o644, 0o600, 0o755, 0, 0o777), { nil: undefined }),
  digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});

Deno.test("artifact table: entries are the plain entries of its rows, in order", () => {
  fc.assert(fc.property(fc.array(rowArb, { maxLength: 40 }), (rows) => {
    const t = tableOf(rows);
    assert.equal(t.length, rows.length);
    assert.equal(t.bytes, rows.reduce((n, r) => n + r.size, 0));
    assert.deepEqual(t.entries(), rows.map(plainEntry));
    // Keys in canonical order, as the native serializer writes them.
    for (const e of t.entries()) assert.equal(JSON.stringify(e), canonicalJson(e));
    assert.deepEqual(t.entries(1, 3), rows.slice(1, 3).map(plainEntry));
  }));
});

Deno.test("artifact table: grows past a block; rows read back by field and as rows", () => {
  const t = new ArtifactTable();
  const n = 4096 * 2 + 5;
  for (let i = 0; i < n; i++) {
    const row = t.push(
      i % 3 ? "file" : "git-object",
      `p/${i}`,
      i * 1000,
      i % 7 ? undefined : 0o600,
    );
    assert.equal(row, i);
    assert.ok(t.setDigestHex(row, (i % 256).toString(16).padStart(2, "0").repeat(32)));
  }
  for (const i of [0, 4095, 4096, 8191, 8192, n - 1]) {
    assert.equal(t.path(i), `p/${i}`);
    assert.equal(t.size(i), i * 1000);
    assert.equal(t.kind(i), i % 3 ? "file" : "git-object");
    assert.equal(t.sha256(i), (i % 256).toString(16).padStart(2, "0").repeat(32));
    assert.equal(t.entry(i).mode, i % 7 ? undefined : 0o600);
  }
  assert.equal(rowsOf(lazyManifest({ ...testManifestHead(), artifacts: [] }, t)).path(5), "p/5");
  const plain = { ...testManifestHead(), artifacts: t.entries(0, 10) };
  assert.equal(rowsOf(plain).sha256(3), plain.artifacts[3]!.sha256);
  assert.equal(lowerBoundRow(rowsOf(plain), "p/2"), 2);
});

Deno.test("artifact table: a digest is set from lowercase hex only", () => {
  const t = new ArtifactTable();
  t.push("file", "a", 0, undefined);
  const good = "0123456789abcdef".repeat(4);
  assert.ok(t.setDigestHex(0, good));
  assert.equal(t.sha256(0), good);
  for (
    const bad of [
      good.toUpperCase(),
      good.slice(1),
      `${good}0`,
      `${good.slice(1)}g`,
      `${good.slice(1)} `,
    ]
  ) {
    assert.equal(t.setDigestHex(0, bad), false, bad);
    assert.equal(t.sha256(0), good);
  }
});

Deno.test("lazy manifest: the same bytes, value and totals as the manifest of its entries", () => {
  fc.assert(
    fc.property(
      // Past 512 artifacts the manifest is serialized in pieces.
      fc.array(rowArb, { maxLength: 60 }),
      fc.integer({ min: 0, max: 2500 }),
      (given, extra) => {
        const rows = [...given];
        for (let i = 0; i < extra; i++) {
          rows.push({
            kind: "git-object",
            path: `git/objects/${String(i).padStart(6, "0")}`,
            size: i,
            mode: undefined,
            digest: new Uint8Array(32).fill(i & 255),
          });
        }
        const unique = [...new Map(rows.map((r) => [r.path, r])).values()]
          .sort((a, b) => comparePaths(a.path, b.path));
        const plain: Manifest = { ...testManifestHead(), artifacts: unique.map(plainEntry) };
        const lazy = lazyManifest({ ...testManifestHead(), artifacts: [] }, tableOf(unique));
        assert.notEqual(artifactTableOf(lazy), undefined);
        assert.deepEqual(artifactTotals(lazy), artifactTotals(plain));
        const bytes = encodeManifest(plain);
        assert.deepEqual(concat([...manifestChunks(lazy)]), bytes);
        assert.deepEqual(encodeManifest(lazy), bytes);
        // Nothing above made the entries.
        assert.notEqual(artifactTableOf(lazy), undefined);
        assert.deepEqual(Object.keys(lazy), Object.keys(plain));
        assert.deepEqual(lazy, plain);
        // Read once: a plain array from then on, the same object at every read.
        assert.equal(artifactTableOf(lazy), undefined);
        assert.equal(lazy.artifacts, lazy.artifacts);
        assert.deepEqual(encodeManifest(lazy), bytes);
      },
    ),
    { numRuns: 30 },
  );
});

Deno.test("lazy manifest: an assignment replaces the entries, and the table is let go", () => {
  const m = lazyManifest(
    { ...testManifestHead(), artifacts: [] },
    tableOf([{
      kind: "file",
      path: "a",
      size: 1,
      mode: undefined,
      digest: new Uint8Array(32),
    }]),
  );
  m.artifacts = [];
  assert.equal(artifactTableOf(m), undefined);
  assert.deepEqual(m.artifacts, []);
  assert.equal(artifactTotals(m).count, 0);
  const spread = { ...lazyManifest({ ...testManifestHead(), artifacts: [] }, tableOf([])) };
  assert.deepEqual(spread.artifacts, []);
  assert.equal(Object.getOwnPropertyDescriptor(spread, "artifacts")?.writable, true);
});

Deno.test("writeBundle returns a lazy manifest equal to the one read back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/b.memsnap`;
    const written = await writeBundle(path, testHeader(), [
      source("memdir/b.md", "bee"),
      source("memdir/a.md", "a", { mode: 0o600 }),
      source("sqlite/x.sqlite", new Uint8Array(3 << 20), { kind: "sqlite", chunk: 1 << 20 }),
    ]);
    assert.notEqual(artifactTableOf(written), undefined);
    assert.deepEqual(artifactTotals(written), { count: 3, bytes: 4 + (3 << 20) });
    const read = await readManifest(await openBundleFile(path));
    assert.deepEqual(concat([...manifestChunks(written)]), encodeManifest(read));
    assert.deepEqual(written, read);
    assert.deepEqual(written.artifacts.map((a) => a.path), [
      "memdir/a.md",
      "memdir/b.md",
      "sqlite/x.sqlite",
    ]);
    assert.equal(written.artifacts[0]!.mode, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rows compare digests across a table and a list alike", () => {
  fc.assert(fc.property(fc.array(rowArb, { minLength: 1, maxLength: 8 }), fc.nat(), (rows, k) => {
    const t = tableOf(rows);
    const list = listRows(rows.map(plainEntry));
    const other = tableOf(
      rows.map((r, i) => i === k % rows.length ? { ...r, digest: r.digest.map((b) => b ^ 1) } : r),
    );
    for (let i = 0; i < rows.length; i++) {
      for (const [a, b] of [[t, list], [list, t], [t, t], [list, list]] as const) {
        assert.equal(a.sameSha256(i, b, i), true);
      }
      const same = i !== k % rows.length;
      assert.equal(t.sameSha256(i, other, i), same);
      assert.equal(t.hasSha256(i, rows[i]!.digest), true);
      assert.equal(list.hasSha256(i, rows[i]!.digest), true);
      assert.equal(t.hasSha256(i, rows[i]!.digest.map((b) => b ^ 0x80)), false);
      assert.equal(list.hasSha256(i, rows[i]!.digest.map((b) => b ^ 0x80)), false);
      assert.equal(list.sameSha256(i, other, i), same);
      assert.equal(other.sameSha256(i, list, i), same);
    }
  }));
});

Deno.test("a written manifest stays a table through the unchanged check and an extraction", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/b.memsnap`;
    const sources = () =>
      Array.from(
        { length: 3000 },
        (_, i) => source(`memdir/n/${String(i).padStart(5, "0")}.md`, `note ${i}`),
      );
    const written = await writeBundle(path, testHeader(), sources());
    const again = await unchangedManifest(await openBundleFile(path), written);
    assert.ok(again);
    assert.notEqual(artifactTableOf(written), undefined);
    assert.notEqual(artifactTableOf(again), undefined);
    const read = await readManifest(await openBundleFile(path));
    // The extraction compares the bundle's manifest with the one given, and returns it.
    const out = await extractBundle(await openBundleFile(path), `${dir}/out`, {
      manifest: written,
    });
    assert.equal(out, written);
    assert.notEqual(artifactTableOf(written), undefined);
    assert.equal(await Deno.readTextFile(`${dir}/out/memdir/n/02999.md`), "note 2999");
    assert.deepEqual(again, read);
    assert.deepEqual(written, read);
    // Another list is not the same.
    const other = await writeBundle(`${dir}/c.memsnap`, testHeader(), sources().slice(1));
    assert.equal(await unchangedManifest(await openBundleFile(path), other), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lazy manifest: a frozen one still reads its entries, made once", () => {
  const t = new ArtifactTable();
  t.push("file", "a", 1, undefined);
  const m = Object.freeze(lazyManifest({ ...testManifestHead(), artifacts: [] }, t));
  assert.equal(m.artifacts.length, 1);
  assert.equal(m.artifacts, m.artifacts);
  assert.equal(artifactTableOf(m), undefined);
  assert.equal(rowsOf(m).path(0), "a");
});
