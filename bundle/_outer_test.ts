import assert from "node:assert/strict";
import fc from "fast-check";
import { readManifestWithBytes } from "./_outer.ts";
import { encodeManifest, MANIFEST_NAME, parseManifest } from "./_manifest.ts";
import { bundleLimits } from "./bundle_limits.ts";
import { comparePaths } from "./_paths.ts";
import type { TarEntry } from "./_tar_reader.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import { testManifestHead } from "../tests/bundle_helpers.ts";

function manifestOf(arts: ManifestArtifact[], agent = "agent-1"): Manifest {
  const unique = [...new Map(arts.map((a) => [a.path, a])).values()];
  return {
    ...testManifestHead({ agent_id: agent, captures: { memdir: { files: unique.length } } }),
    artifacts: unique.sort((a, b) => comparePaths(a.path, b.path)),
  } as Manifest;
}

/** The outer tar's entries as the reader sees them: the manifest's bytes cut at `cuts`. */
async function* entries(bytes: Uint8Array, cuts: number[]): AsyncGenerator<TarEntry> {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  yield {
    path: MANIFEST_NAME,
    size: bytes.length,
    mode: 0o644,
    async *body() {
      let from = 0;
      for (const c of [...at, bytes.length]) {
        if (c <= from) continue;
        yield bytes.slice(from, c);
        from = c;
      }
    },
  };
}

/** The value read, or the error thrown. */
async function read(bytes: Uint8Array, cuts: number[], known?: Manifest, keep = false) {
  try {
    return await readManifestWithBytes(entries(bytes, cuts), bundleLimits, keep, known);
  } catch (e) {
    return e as Error;
  }
}

Deno.test("readManifestWithBytes(known): the same value or error as without it, and `known` itself when the bytes are its own (property)", async () => {
  const artifact = fc.record({
    // Segments of characters JSON escapes or the stream parser cuts at; valid paths.
    path: fc.array(
      fc.array(fc.constantFrom("a", "é", '"', "}", "{", "]", ",", ":", "🧠"), {
        minLength: 1,
        maxLength: 4,
      }).map((cs) => cs.join("")),
      { minLength: 1, maxLength: 3 },
    ).map((ss) => `memdir/${ss.join("/")}`),
    kind: fc.constantFrom("file", "git-object"),
    size: fc.nat(),
    sha256: fc.constantFrom("a".repeat(64), "0123456789abcdef".repeat(4)),
  }) as fc.Arbitrary<ManifestArtifact>;
  await fc.assert(
    fc.asyncProperty(
      fc.array(artifact, { maxLength: 30 }),
      fc.oneof(
        fc.constant("same" as const),
        fc.array(artifact, { maxLength: 30 }), // another manifest
      ),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.option(fc.tuple(fc.nat(), fc.nat(255)), { nil: undefined }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.boolean(),
      async (arts, other, cuts, damage, cut, keep) => {
        const m = manifestOf(arts);
        let bytes = encodeManifest(m);
        if (damage) bytes[damage[0] % bytes.length] = damage[1];
        // A manifest entry cut short: a prefix of `known`'s text when the rest is the same.
        if (cut !== undefined) bytes = bytes.slice(0, cut % bytes.length);
        // `known` as a reader has it: parsed from a bundle's bytes.
        const known = parseManifest(
          encodeManifest(other === "same" ? m : manifestOf(other, "agent-2")),
          bundleLimits,
        );
        const want = await read(bytes, cuts);
        const got = await read(bytes, cuts, known, keep);
        if (want instanceof Error) {
          assert.ok(got instanceof Error, "accepted what the parser refuses");
          assert.equal(got.constructor, want.constructor);
          assert.equal(got.message, want.message);
          return;
        }
        assert.ok(!(got instanceof Error), String(got));
        assert.deepEqual(got.manifest, want.manifest);
        if (keep) assert.deepEqual(got.bytes, bytes);
        const ownBytes = encodeManifest(known).every((b, i) => b === bytes[i]) &&
          encodeManifest(known).length === bytes.length;
        assert.equal(got.manifest === known, ownBytes, "known returned exactly when its bytes");
      },
    ),
    { numRuns: 600 },
  );
});
