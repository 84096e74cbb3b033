import assert from "node:assert/strict";
import { Ajv } from "ajv";
import fc from "fast-check";
import { MANIFEST_SCHEMA } from "./_manifest_schema.ts";
import { validateManifestSchema } from "./_manifest_validator.ts";
import {
  AJV_OPTIONS,
  generateManifestValidator,
  VALIDATOR_URL,
} from "./_manifest_validator_gen.ts";
import { encodeManifest, jsonStringLength, manifestChunks } from "./_manifest.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";

Deno.test("MANIFEST_SCHEMA equals docs/manifest.schema.json", async () => {
  const doc = JSON.parse(
    await Deno.readTextFile(new URL("../docs/manifest.schema.json", import.meta.url)),
  );
  assert.deepEqual(MANIFEST_SCHEMA, doc);
});

Deno.test("_manifest_validator.ts is what the generator makes from the schema (run `deno task gen:manifest-validator`)", async () => {
  assert.equal(await Deno.readTextFile(VALIDATOR_URL), generateManifestValidator());
});

/** A valid manifest using every optional branch: label, parent, mode, encryption, redaction. */
function validManifest(): Record<string, unknown> {
  const sha = "ab".repeat(32);
  return {
    format: "memsnap-bundle",
    manifest_version: 1,
    snapshot_id: "20261125T195222123Z-1a2b3c4d",
    agent_id: "agent-1",
    tenant: "default",
    label: "nightly",
    created_at: "2026-11-25T19:52:22.123Z",
    created_by: "cli",
    parent: "20261124T195222123Z-0a2b3c4d",
    artifacts: [
      { path: "memdir/a.md", kind: "file", size: 3, sha256: sha, mode: 420 },
      { path: "state/s.json", kind: "state", size: 0, sha256: sha },
    ],
    payload: {
      path: "payload.tar.zst.age",
      size: 123,
      sha256: sha,
      compression: "zstd",
      encryption: { scheme: "age", recipients: ["age1xyz"] },
    },
    captures: { memdir: { files: 1 } },
    redaction: {
      redacted: true,
      packs: [{ id: "secrets", version: "1" }],
      rules: [{ id: "aws", count: 2, artifacts: ["memdir/a.md"] }],
      skipped_binary: ["memdir/b.bin"],
    },
    tools: { memsnap: "0.1.0" },
    extra_top_level: { anything: true },
  };
}

/** Every [container, key] of a JSON value, depth first. */
function slots(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([v, i]);
      slots(x, out);
    });
  } else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      out.push([v as Record<string, unknown>, k]);
      slots(x, out);
    }
  }
  return out;
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  512,
  2 ** 53,
  "",
  "x",
  "a".repeat(257),
  "\u{1F600}".repeat(256),
  "\u{1F600}".repeat(257),
  "\ud800".repeat(256),
  "20261125T195222123Z-1a2b3c4D",
  "2026-11-25T19:52:22.123Z\n",
  "ab".repeat(32) + "\n",
  "payload.tar.zst",
  "memsnap-bundle",
  "age",
  "zstd",
  [],
  [1],
  {},
  { scheme: "age", recipients: [] },
];

Deno.test("the generated validator gives the same verdict and first error as ajv at run time", () => {
  const runtime = new Ajv({ ...AJV_OPTIONS }).compile(MANIFEST_SCHEMA);
  const check = (value: unknown): void => {
    const a = runtime(value);
    const b = validateManifestSchema(value);
    assert.equal(b, a, JSON.stringify(value));
    assert.deepEqual(validateManifestSchema.errors ?? null, runtime.errors ?? null);
  };
  assert.equal(validateManifestSchema(validManifest()), true);
  check(validManifest());
  for (const v of ODD_VALUES) check(v);
  // Every slot replaced by every odd value, deleted, and each object given an unknown key.
  const n = slots(validManifest()).length;
  for (let i = 0; i < n; i++) {
    for (const odd of [...ODD_VALUES, undefined]) {
      const m = validManifest();
      const [container, key] = slots(m)[i]!;
      if (odd === undefined) {
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key as string];
      } else (container as Record<string, unknown>)[key] = odd;
      check(m);
    }
    const m = validManifest();
    const [container, key] = slots(m)[i]!;
    const inner = (container as Record<string, unknown>)[key];
    if (inner && typeof inner === "object" && !Array.isArray(inner)) {
      (inner as Record<string, unknown>).unknown_key = 1;
      check(m);
    }
  }
  // Random JSON in random slots.
  fc.assert(
    fc.property(fc.nat(), fc.jsonValue(), (pick, value) => {
      const m = validManifest();
      const all = slots(m);
      const [container, key] = all[pick % all.length]!;
      (container as Record<string, unknown>)[key] = value;
      check(m);
    }),
    { numRuns: 500 },
  );
});

Deno.test("manifestChunks() pieces concatenate to encodeManifest(), for any artifact entries", () => {
  const base = validManifest() as unknown as Manifest;
  const art = (i: number): ManifestArtifact =>
    i % 7 === 0
      ? { kind: "file", mode: 0o755, path: `memdir/é/${i}`, sha256: "a".repeat(64), size: i }
      : { kind: "git-object", path: `git/objects/${i}`, sha256: "b".repeat(64), size: i * 3 };
  const cases: [string, Manifest, boolean][] = [
    ["few", { ...base, artifacts: [art(0), art(1)] }, false],
    ["many plain", { ...base, artifacts: Array.from({ length: 5000 }, (_, i) => art(i)) }, true],
    ["exactly one piece of artifacts", {
      ...base,
      artifacts: Array.from({ length: 2049 }, (_, i) => art(i)),
    }, true],
    ["many, one not plain (keys out of order)", {
      ...base,
      artifacts: Array.from(
        { length: 5000 },
        (_, i) =>
          i === 4321 ? { path: `x/${i}`, kind: "file", size: 1, sha256: "c".repeat(64) } : art(i),
      ),
    }, false],
  ];
  for (const [name, m, pieces] of cases) {
    const chunks = [...manifestChunks(m)];
    const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      whole.set(c, at);
      at += c.length;
    }
    assert.deepEqual(whole, encodeManifest(m), name);
    assert.equal(chunks.length > 1, pieces, name);
  }
});

Deno.test("jsonStringLength() is the UTF-8 length of JSON.stringify(), for any string", () => {
  const enc = new TextEncoder();
  const check = (s: string) =>
    assert.equal(jsonStringLength(s), enc.encode(JSON.stringify(s)).length);
  for (
    const s of ["", '"', "\\", "\b\f\n\r\t\v\0\x1f\x7f", "\ud800", "\udc00x", "\ud83d\ude00", "é€"]
  ) {
    check(s);
  }
  fc.assert(fc.property(fc.string({ unit: "binary" }), check), { numRuns: 2000 });
  // Surrogates of any pairing, and controls, next to each other.
  const units = fc.constantFrom(
    0x0,
    0x8,
    0x1f,
    0x22,
    0x5c,
    0x7f,
    0x80,
    0x7ff,
    0x800,
    0xd7ff,
    0xd800,
    0xdbff,
    0xdc00,
    0xdfff,
    0xe000,
    0xffff,
  );
  fc.assert(
    fc.property(fc.array(units, { maxLength: 12 }), (cs) => check(String.fromCharCode(...cs))),
    { numRuns: 2000 },
  );
});
