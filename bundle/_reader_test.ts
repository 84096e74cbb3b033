import assert from "node:assert/strict";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { ManifestPaths, readPass, type SinkDigests } from "./_reader.ts";
import { resolveLimits } from "./_io.ts";
import { damagedArtifacts, streamOf } from "../tests/bundle_helpers.ts";
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

const WANT_FAILURES = damagedArtifacts().failures;
const damagedBundle = (): Uint8Array => damagedArtifacts().bundle;

/**
 * A sink that hashes what it takes (all but `declined`), and reports the digests only when
 * drained, in the order `order` puts them; `skip` is never reported.
 */
function hashingSink(
  order: (indexes: number[]) => number[],
  declined = new Set<string>(),
  skip?: string,
): {
  digests: SinkDigests;
  sink: (a: ManifestArtifact, c: AsyncIterable<Uint8Array>, i: number) => Promise<void>;
  taken: string[];
} {
  let report: ((index: number, sha256: Uint8Array) => void) | undefined;
  const done = new Map<number, Uint8Array>();
  const taken: string[] = [];
  return {
    taken,
    digests: {
      connect: (r) => void (report = r),
      takes: (a) => !declined.has(a.path),
      async drain() {
        await Promise.resolve();
        for (const i of order([...done.keys()])) report!(i, done.get(i)!);
      },
    },
    async sink(a, chunks, index) {
      if (declined.has(a.path)) return;
      taken.push(a.path);
      const h = createHash("sha256");
      for await (const c of chunks) h.update(c);
      if (a.path !== skip) done.set(index, new Uint8Array(h.digest()));
    },
  };
}

Deno.test("readPass() checks the digests a sink reports late, failures where the reader puts them", async () => {
  const orders: ((xs: number[]) => number[])[] = [
    (xs) => xs,
    (xs) => xs.reverse(),
    (xs) => [...xs.filter((_, i) => i % 2 === 1), ...xs.filter((_, i) => i % 2 === 0)],
  ];
  for (const order of orders) {
    for (const declined of [new Set<string>(), new Set(["b", "d"])]) {
      const s = hashingSink(order, declined);
      const r = await readPass(streamOf(damagedBundle(), 65_536), {
        limits: resolveLimits(undefined),
        phase: "extract",
        sink: s.sink,
        sinkDigests: s.digests,
      });
      assert.deepEqual(r.failures.map((f) => [f.check, f.path]), WANT_FAILURES);
      const b = r.failures.find((f) => f.path === "big")!;
      assert.match(b.detail, /^artifact sha256 is [0-9a-f]{64}, manifest says [0-9a-f]{64}$/);
      assert.deepEqual(s.taken, ["a", "b", "big", "c", "d", "e"].filter((p) => !declined.has(p)));
    }
  }
  // The same without a sink that hashes: the reader's own checks.
  const plain = await readPass(streamOf(damagedBundle(), 65_536), {
    limits: resolveLimits(undefined),
    phase: "verify",
  });
  assert.deepEqual(plain.failures.map((f) => [f.check, f.path]), WANT_FAILURES);
});

Deno.test("readPass() fails an artifact a sink took and never reported", async () => {
  const s = hashingSink((xs) => xs, new Set(), "d");
  const r = await readPass(streamOf(damagedBundle(), 65_536), {
    limits: resolveLimits(undefined),
    phase: "extract",
    sink: s.sink,
    sinkDigests: s.digests,
  });
  assert.deepEqual(r.failures.map((f) => [f.check, f.path]), [
    ...WANT_FAILURES.slice(0, 3),
    ["artifact_hash", "d"],
    ...WANT_FAILURES.slice(3),
  ]);
  assert.match(r.failures[3]!.detail, /not checked/);
});
