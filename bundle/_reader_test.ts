import assert from "node:assert/strict";
import fc from "fast-check";
import { ManifestPaths } from "./_reader.ts";
import { listRows } from "./_artifact_table.ts";
import { comparePaths, PathSet } from "./_paths.ts";
import type { ManifestArtifact } from "./types.ts";

const artifacts = (paths: string[]): ManifestArtifact[] =>
  [...new Set(paths)].sort(comparePaths).map((path) => ({
    path,
    kind: "file",
    size: 0,
    sha256: "0".repeat(64),
  }));

/** Feeds `entries` to both trackers up to the first problem; they must agree at every step. */
function agree(manifest: string[], entries: string[]): void {
  const arts = artifacts(manifest);
  const tracker = new ManifestPaths(listRows(arts));
  const set = new PathSet();
  const seen = new Set<number>();
  for (const p of entries) {
    const want = set.add(p);
    assert.deepEqual(tracker.add(p), want, `${JSON.stringify(entries)} at ${p}`);
    if (want) return;
    const at = arts.findIndex((a) => a.path === p);
    assert.equal(tracker.index, at, p);
    if (at !== -1) seen.add(at);
  }
  assert.deepEqual(
    [...tracker.found].flatMap((f, i) => f ? [i] : []),
    [...seen].sort((a, b) => a - b),
  );
}

Deno.test("ManifestPaths finds what a PathSet finds: duplicates, conflicts, in order or not", () => {
  agree(["a", "b"], ["a", "a"]);
  agree(["a", "a/b"], ["a", "a/b"]);
  agree(["a", "a/b"], ["a/b", "a"]);
  agree(["a"], ["x", "x/y"]);
  agree(["a"], ["a", "a/b"]);
  agree(["a", "b"], ["b", "a", "b"]);
  agree(["b", "c"], ["c", "b/x", "b"]);
  agree(["a.b", "a/c", "a-d"], ["a-d", "a.b", "a/c", "a-d"]);
});

Deno.test("ManifestPaths agrees with PathSet on random manifests and payloads", () => {
  const path = fc.array(fc.constantFrom("a", "b", "a.", "/"), { minLength: 1, maxLength: 5 })
    .map((s) => s.join(""))
    .filter((p) => !p.startsWith("/") && !p.endsWith("/") && !p.includes("//"));
  fc.assert(
    fc.property(
      fc.array(path, { maxLength: 12 }),
      fc.array(path, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 16 }),
      fc.boolean(),
      (manifest, extras, picks, sortedPayload) => {
        const pool = [...manifest, ...extras];
        if (pool.length === 0) return;
        const entries = picks.map((i) => pool[i % pool.length]!);
        if (sortedPayload) entries.sort(comparePaths);
        agree(manifest, entries);
      },
    ),
    { numRuns: 3000 },
  );
});
