import assert from "node:assert/strict";
import fc from "fast-check";
import { ArtifactTable, artifactTableOf, artifactTotals, lazyManifest } from "./_artifact_table.ts";
import { encodeManifest, manifestChunks } from "./_manifest.ts";
import { canonicalJson } from "./canonical_json.ts";
import { hex } from "./_io.ts";
import { comparePaths } from "./_paths.ts";
import { readManifest } from "./read_manifest.ts";
import { openBundleFile } from "./open_bundle_file.ts";
import { writeBundle } from "./write_bundle.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import { source, testHeader, testManifestHead } from "../tests/bundle_helpers.ts";

interface Row {
  kind: string;
  path: string;
  size: number;
  mode: number | undefined;
  digest: Uint8Array;
}

/** The manifest entry `writeBundle` has always made for a row: mode only when not 0644. */
function plainEntry(r: Row): ManifestArtifact {
  const sha256 = hex(r.digest);
  return r.mode !== undefined && r.mode !== 0o644
    ? { kind: r.kind, mode: r.mode, path: r.path, sha256, size: r.size }
    : { kind: r.kind, path: r.path, sha256, size: r.size };
}

function tableOf(rows: Row[]): ArtifactTable {
  const t = new ArtifactTable(rows.length);
  for (const r of rows) t.digests.set(r.digest, 32 * t.push(r.kind, r.path, r.size, r.mode));
  return t;
}

function concat(pieces: Iterable<Uint8Array>): Uint8Array {
  const all = [...pieces];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
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

Deno.test("artifact table: refuses a row past its capacity", () => {
  const t = new ArtifactTable(1);
  t.push("file", "a", 1, undefined);
  assert.throws(() => t.push("file", "b", 1, undefined), RangeError);
});

Deno.test("lazy manifest: the same bytes, value and totals as the manifest of its entries", () => {
  fc.assert(
    fc.property(
      // Past 2,048 artifacts the manifest is serialized in pieces.
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
        assert.deepEqual(concat(manifestChunks(lazy)), bytes);
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
    assert.deepEqual(concat(manifestChunks(written)), encodeManifest(read));
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
