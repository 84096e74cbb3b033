import assert from "node:assert/strict";
import fc from "fast-check";
import { ManifestStreamParser } from "./_manifest_stream.ts";
import { encodeManifest, parseManifest } from "./_manifest.ts";
import { bundleLimits } from "./bundle_limits.ts";
import { comparePaths } from "./_paths.ts";
import { canonicalJson } from "./canonical_json.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import { testManifestHead } from "../tests/bundle_helpers.ts";

const enc = new TextEncoder();

/** A manifest header with a redaction report and captures (every artifact list goes in it). */
function header(): Omit<Manifest, "artifacts"> {
  return testManifestHead({
    created_by: "cli",
    captures: { memdir: { files: 1 } },
    redaction: {
      redacted: true,
      packs: [{ id: "secrets", version: "1" }],
      rules: [{ id: "aws", count: 2, artifacts: ["memdir/a.md"] }],
      skipped_binary: [],
    },
  });
}

function art(i: number): ManifestArtifact {
  const n = String(i).padStart(6, "0");
  return i % 5 === 0
    ? { kind: "file", mode: 0o755, path: `memdir/${n}/é`, sha256: "a".repeat(64), size: i }
    : { kind: "git-object", path: `memdir/${n}`, sha256: "b".repeat(64), size: i * 3 };
}

function sorted(arts: ManifestArtifact[]): ManifestArtifact[] {
  return arts.sort((a, b) => comparePaths(a.path, b.path));
}

/** The stream parser's outcome for `bytes` cut at `cuts`, as a value or the error thrown. */
function streamed(
  bytes: Uint8Array,
  cuts: number[],
  batchBytes?: number,
  onParser?: (p: ManifestStreamParser) => void,
): unknown {
  const p = new ManifestStreamParser(bundleLimits, batchBytes);
  onParser?.(p);
  let at = 0;
  try {
    for (const c of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)]) {
      p.push(bytes.slice(at, c));
      at = c;
    }
    p.push(bytes.slice(at));
    return p.end();
  } catch (e) {
    return e;
  }
}

function whole(bytes: Uint8Array): unknown {
  try {
    return parseManifest(bytes, bundleLimits);
  } catch (e) {
    return e;
  }
}

/** Same value, or the same error (class, message and rule). */
function assertSame(bytes: Uint8Array, cuts: number[], what: string, batchBytes?: number): void {
  const a = streamed(bytes, cuts, batchBytes);
  const b = whole(bytes);
  if (b instanceof Error) {
    assert.ok(a instanceof Error, `${what}: streamed accepted what parseManifest refuses`);
    assert.equal(a.constructor, b.constructor, what);
    assert.equal(a.message, b.message, what);
    assert.equal((a as { rule?: string }).rule, (b as { rule?: string }).rule, what);
  } else {
    assert.ok(!(a instanceof Error), `${what}: ${a}`);
    assert.deepEqual(a, b, what);
  }
}

/** Chunk cuts every `step` bytes. */
function every(n: number, step: number): number[] {
  return Array.from({ length: Math.ceil(n / step) }, (_, i) => i * step);
}

Deno.test("ManifestStreamParser gives parseManifest()'s value, however the bytes are cut", () => {
  for (const count of [0, 1, 2, 3000, 9000]) {
    const m: Manifest = { ...header(), artifacts: Array.from({ length: count }, (_, i) => art(i)) };
    const bytes = encodeManifest(m);
    for (const step of [1, 7, 511, 4096, 65536, bytes.length]) {
      if (step === 1 && count > 3) continue; // slow, and 7 covers every split
      let parser: ManifestStreamParser | undefined;
      const got = streamed(bytes, every(bytes.length, step), undefined, (p) => parser = p);
      assert.ok(!(got instanceof Error), `${count}/${step}: ${got}`);
      assert.equal(parser!.fellBack, false, "read as it streamed in, not whole");
      assert.deepEqual(got, parseManifest(bytes, bundleLimits), `${count} artifacts, ${step}`);
    }
  }
});

Deno.test("ManifestStreamParser refuses exactly as parseManifest(), wherever the flaw is", () => {
  const many = (edit: (arts: ManifestArtifact[]) => void, head: Partial<Manifest> = {}) => {
    const arts = Array.from({ length: 6000 }, (_, i) => art(i));
    edit(arts);
    return encodeManifest({ ...header(), ...head, artifacts: arts } as Manifest);
  };
  const canonical = new TextDecoder().decode(many(() => {}));
  const text = (s: string) => {
    assert.notEqual(s, canonical);
    return enc.encode(s);
  };
  const cases: [string, Uint8Array][] = [
    ["valid", many(() => {})],
    ["unsorted late", many((a) => [a[5000], a[5001]] = [a[5001]!, a[5000]!])],
    ["duplicate late", many((a) => a[5001] = { ...a[5000]! })],
    ["bad sha late", many((a) => a[5500]!.sha256 = "X".repeat(64))],
    ["negative size late", many((a) => a[5500]!.size = -1)],
    ["extra field late", many((a) => (a[5500] as unknown as Record<string, number>).zz = 1)],
    ["unsafe path late", many((a) => a[5999]!.path = "zz/../x")],
    ["newer version", many(() => {}, { manifest_version: 2 })],
    ["newer version, bad artifact", many((a) => a[10]!.size = -1, { manifest_version: 2 })],
    ["other format", many(() => {}, { format: "other" as "memsnap-bundle" })],
    [
      "bad payload path",
      many(() => {}, {
        payload: { ...header().payload, path: "payload.tar.zst.age" },
      }),
    ],
    ["space late", text(canonical.replace(`"size":17994}`, `"size":17994 }`))],
    [
      "escaped slash late",
      text(canonical.replace('"memdir/005999"', '"memdir\\/005999"')),
    ],
    ["exponent late", text(canonical.replace('"size":17997}', '"size":17997e0}'))],
    ["truncated", text(canonical.slice(0, canonical.length - 700_000))],
    ["truncated in the tail", text(canonical.slice(0, canonical.length - 40))],
    ["trailing garbage", text(canonical + " ")],
    ["not an object", text("[1,2]")],
    ["empty", new Uint8Array(0)],
    ["key before agent_id", text(canonical.replace('{"agent_id"', '{"aa":1,"agent_id"'))],
    [
      "key between artifacts and captures",
      text(canonical.replace('],"captures"', '],"b":1,"captures"')),
    ],
    ["empty list", encodeManifest({ ...header(), artifacts: [] })],
    [
      "empty list, spaced",
      text(canonicalJson({ ...header(), artifacts: [] }).replace("[]", "[ ]")),
    ],
    [
      "invalid UTF-8 late",
      (() => {
        const b = many(() => {});
        const at = new TextDecoder().decode(b).indexOf("005900");
        b[at] = 0xff;
        return b;
      })(),
    ],
  ];
  assert.ok(!(whole(cases[0]![1]) instanceof Error));
  for (const [name, bytes] of cases) {
    for (const step of [13, 4096, 65536, 1 << 20]) {
      assertSame(bytes, every(bytes.length, step), `${name} (${step})`);
    }
  }
});

Deno.test("ManifestStreamParser: entries whose paths hold the bytes it cuts at", () => {
  // Each path below, once JSON-escaped, contains pieces of `},{"kind":"` or `}],"captures":`.
  const odd = [
    'a},{"kind":"x',
    'b}],"captures":{',
    "c}]",
    "d},{",
    'e\\"},{"kind":"',
    "f]",
    "g\u2028}",
  ];
  const arts = sorted(
    Array.from({ length: 7000 }, (_, i) => ({
      ...art(i),
      path: `${odd[i % odd.length]}/${String(i).padStart(5, "0")}`,
    })),
  );
  const bytes = encodeManifest({ ...header(), artifacts: arts });
  for (const step of [5, 4096, 300_000]) assertSame(bytes, every(bytes.length, step), `${step}`);
  for (const batch of [1, 100, 1000]) {
    assertSame(bytes, every(bytes.length, 777), `batches of ${batch}`, batch);
  }
});

Deno.test("ManifestStreamParser agrees with parseManifest() on random manifests and damage", () => {
  const pathChar = fc.constantFrom(...'ab/.}{],"\\:é\u{1F600} \n'.split(""), "kind", "captures");
  const artifact = fc.record({
    path: fc.array(pathChar, { minLength: 1, maxLength: 12 }).map((a) => a.join("")),
    kind: fc.constantFrom("file", "git-object", "sqlite"),
    size: fc.nat(),
    sha256: fc.constantFrom("a".repeat(64), "0123456789abcdef".repeat(4)),
    mode: fc.option(fc.integer({ min: 0, max: 511 }), { nil: undefined }),
  }).map((a) => {
    if (a.mode === undefined) delete (a as Partial<typeof a>).mode;
    return a as ManifestArtifact;
  });
  fc.assert(
    fc.property(
      fc.array(artifact, { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { nil: undefined }),
      (list, cuts, damage) => {
        const unique = new Map(list.map((a) => [a.path, a]));
        const m = { ...header(), artifacts: sorted([...unique.values()]) };
        const bytes = encodeManifest(m);
        if (damage) bytes[damage[0] % bytes.length] = damage[1];
        const scaled = cuts.map((c) => c % (bytes.length + 1));
        assertSame(bytes, scaled, "random");
        assertSame(bytes, scaled, "random, small batches", 40);
      },
    ),
    { numRuns: 1500 },
  );
});
