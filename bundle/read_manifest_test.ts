import assert from "node:assert/strict";
import { CorruptBundleError, RefusedError, UnsafeBundleError } from "../errors.ts";
import { readManifest, unchangedManifest } from "./read_manifest.ts";
import type { Manifest } from "./types.ts";
import { writeBundle } from "./write_bundle.ts";
import { canonicalJson } from "./canonical_json.ts";
import { concat, EOA, rawEntry, source, streamOf, testHeader } from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

async function bundleBytes(): Promise<Uint8Array> {
  await using dir = await tempDir();
  const big = new Uint8Array(200_000).map((_, i) => (i * 13) & 0xff);
  await writeBundle(`${dir.path}/b`, testHeader(), [source("a", "x"), source("big", big)]);
  return await Deno.readFile(`${dir.path}/b`);
}

function withManifest(value: unknown): Uint8Array {
  const text = typeof value === "string" ? value : canonicalJson(value);
  return concat([rawEntry({ name: "manifest.json" }, text), EOA]);
}

async function validManifest(): Promise<Record<string, unknown>> {
  return await readManifest(streamOf(await bundleBytes())) as unknown as Record<string, unknown>;
}

Deno.test("readManifest() reads the first entry of a truncated prefix and cancels the rest", async () => {
  const bytes = await bundleBytes();
  const m = await readManifest(streamOf(bytes));
  const manifestSize = new TextEncoder().encode(canonicalJson(m)).length;
  const prefix = bytes.subarray(0, 512 + Math.ceil(manifestSize / 512) * 512);
  assert.deepEqual(await readManifest(streamOf(prefix)), m);
  let cancelled = false;
  let pulled = 0;
  const s = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(bytes.subarray(pulled, pulled + 1024));
      pulled += 1024;
    },
    cancel() {
      cancelled = true;
    },
  });
  await readManifest(s);
  assert.ok(cancelled);
  assert.ok(pulled < 16384);
});

Deno.test("readManifest() fails on a prefix shorter than the manifest (rule truncated)", async () => {
  const bytes = await bundleBytes();
  await assert.rejects(
    readManifest(streamOf(bytes.subarray(0, 700))),
    (e) => e instanceof CorruptBundleError && e.rule === "truncated",
  );
});

Deno.test("readManifest() refuses a bundle whose first entry is not manifest.json", async () => {
  await assert.rejects(
    readManifest(streamOf(concat([rawEntry({ name: "payload.tar.zst" }, "x"), EOA]))),
    (e) => e instanceof CorruptBundleError && e.rule === "manifest_first",
  );
});

Deno.test("readManifest() refuses a newer manifest_version as unsupported", async () => {
  const m = await validManifest();
  await assert.rejects(
    readManifest(streamOf(withManifest({ ...m, manifest_version: 2, new_shape: [1] }))),
    (e) =>
      e instanceof RefusedError && !(e instanceof UnsafeBundleError) && e.exitCode === 4 &&
      /unsupported/.test(e.message),
  );
});

Deno.test("readManifest() refuses a wrong format id", async () => {
  const m = await validManifest();
  await assert.rejects(
    readManifest(streamOf(withManifest({ ...m, format: "other" }))),
    (e) => e instanceof RefusedError && /format/.test(e.message),
  );
});

Deno.test("readManifest() names the field that breaks the schema", async () => {
  const m = await validManifest();
  const cases: [unknown, string][] = [
    [{ ...m, agent_id: 7 }, "/agent_id"],
    [
      { ...m, artifacts: [{ path: "a", kind: "file", size: -1, sha256: "0".repeat(64) }] },
      "/artifacts/0/size",
    ],
    [
      { ...m, artifacts: [{ path: "a", kind: "file", size: 1, sha256: "0".repeat(64), x: 1 }] },
      "/artifacts/0",
    ],
    [{ ...m, payload: { ...(m.payload as object), compression: "gzip" } }, "/payload/compression"],
    [
      { ...m, artifacts: [{ path: "../a", kind: "f", size: 1, sha256: "0".repeat(64) }] },
      "/artifacts/0/path",
    ],
    [{
      ...m,
      artifacts: [
        { path: "b", kind: "f", size: 1, sha256: "0".repeat(64) },
        { path: "a", kind: "f", size: 1, sha256: "0".repeat(64) },
      ],
    }, "/artifacts/1/path"],
  ];
  for (const [value, field] of cases) {
    await assert.rejects(readManifest(streamOf(withManifest(value))), (e) => {
      assert.ok(e instanceof CorruptBundleError, String(e));
      assert.equal(e.rule, "manifest_schema");
      assert.ok(e.message.includes(JSON.stringify(field)), e.message);
      return true;
    });
  }
});

Deno.test("readManifest() allows unknown top-level fields (forward compatibility)", async () => {
  const m = await validManifest();
  const got = await readManifest(streamOf(withManifest({ ...m, future_field: { x: 1 } })));
  assert.deepEqual((got as unknown as Record<string, unknown>).future_field, { x: 1 });
});

Deno.test("readManifest() refuses non-canonical or non-JSON manifests", async () => {
  const m = await validManifest();
  await assert.rejects(
    readManifest(streamOf(withManifest(JSON.stringify(m, null, 1)))),
    (e) => e instanceof CorruptBundleError && e.rule === "manifest_canonical",
  );
  await assert.rejects(
    readManifest(streamOf(withManifest("{not json"))),
    (e) => e instanceof CorruptBundleError && e.rule === "manifest_json",
  );
});

Deno.test("readManifest() refuses a manifest over maxManifestSize", async () => {
  await assert.rejects(
    readManifest(streamOf(await bundleBytes()), { limits: { maxManifestSize: 100 } }),
    (e) => e instanceof UnsafeBundleError && e.rule === "max_manifest_size",
  );
});

Deno.test("readManifest() refuses every non-canonical spelling and accepts canonical integer-like keys", async () => {
  const m = await validManifest();
  const base = canonicalJson({ ...m, zz: 0 });
  assert.ok(base.endsWith(`"zz":0}`));
  const spell = (zz: string) => base.slice(0, -`0}`.length) + zz + "}";
  const refused = [
    spell(`{"b":1,"a":2}`), // unsorted nested keys
    spell(`[{"y":{"d":1,"c":1}}]`), // unsorted deep in an array
    spell(`{"a":1,"a":1}`), // duplicate key
    spell(`"\\u0061"`), // escaped where JSON.stringify writes the character
    spell(`1.0`),
    spell(`1e2`),
    spell(`{"9":1,"10":2}`), // integer-like keys, not in code-unit order
    spell(` 0`),
    `{"zz":0,` + base.slice(1, -`,"zz":0}`.length) + "}", // unsorted top-level keys
  ];
  for (const text of refused) {
    await assert.rejects(
      readManifest(streamOf(withManifest(text))),
      (e) => e instanceof CorruptBundleError && e.rule === "manifest_canonical",
      text.slice(-40),
    );
  }
  const accepted = { ...m, zz: { "10": 1, "9": [2, { "1": null, a: "é\u2028\u0001" }], b: -0.5 } };
  const got = await readManifest(streamOf(withManifest(accepted)));
  assert.deepEqual((got as unknown as Record<string, unknown>).zz, accepted.zz);
});

Deno.test("readManifest() refuses every non-canonical spelling of a large manifest (checked in pieces)", async () => {
  const m = await validManifest();
  const artifacts = Array.from({ length: 5000 }, (_, i) => ({
    kind: "file",
    ...(i % 9 === 0 ? { mode: 0o755 } : {}),
    path: `memdir/n${String(i).padStart(5, "0")}-é.md`,
    sha256: (i % 16).toString(16).repeat(64),
    size: i,
  }));
  const base = canonicalJson({ ...m, artifacts, zz: 0 });
  const entry = canonicalJson(artifacts[3000]);
  assert.ok(base.includes(entry));
  const swap = (to: string) => base.replace(entry, to);
  const spell = (zz: string) => base.slice(0, -`0}`.length) + zz + "}";
  const refused = [
    swap(entry.replace(`{"kind":"file",`, "{").replace(`}`, `,"kind":"file"}`)), // unsorted keys
    swap(entry.replace(`"size":3000`, `"size":3000,"size":3000`)), // duplicate key
    swap(entry.replace("é", "\\u00e9")), // escaped where JSON.stringify writes the character
    swap(entry.replace(`"size":3000`, `"size":3.0e3`)),
    swap(` ${entry}`), // whitespace between entries
    spell(`{"b":1,"a":2}`), // unsorted keys after the artifacts
    spell(`1.0`),
  ];
  for (const text of refused) {
    assert.notEqual(text, base);
    await assert.rejects(
      readManifest(streamOf(withManifest(text))),
      (e) => e instanceof CorruptBundleError && e.rule === "manifest_canonical",
      text.slice(-40),
    );
  }
  const got = await readManifest(streamOf(withManifest(base)));
  assert.equal(got.artifacts.length, 5000);
  assert.deepEqual(got.artifacts[3000], artifacts[3000]);
});

Deno.test("unchangedManifest() compares agent, artifacts and captures as they stream in", async () => {
  await using dir = await tempDir();
  const arts = (n: number, last = "x") =>
    Array.from(
      { length: n },
      (_, i) =>
        source(`memdir/n/${String(i).padStart(5, "0")}.md`, i === n - 1 ? last : `note ${i}`, {
          ...(i % 7 === 0 ? { mode: 0o755 } : {}),
        }),
    );
  // A capture's metadata with a nested "created_at" key, the one that follows "captures".
  const captures = { git: { head: { oid: "a".repeat(40) }, created_at: "then" }, sqlite: { n: 1 } };
  for (const n of [3, 5000]) {
    const path = `${dir.path}/b${n}`;
    const written = await writeBundle(path, testHeader({ captures, label: "first" }), arts(n));
    const bytes = await Deno.readFile(path);
    const check = (m: Pick<Manifest, "agent_id" | "artifacts" | "captures">) =>
      unchangedManifest(streamOf(bytes, 4096), m);
    // Another snapshot of the same content (other id, time, label, payload): the bundle's own
    // manifest comes back, as readManifest() reads it.
    const again = await writeBundle(
      `${dir.path}/again${n}`,
      testHeader({ captures, snapshot_id: "20261126T000000000Z-00000000", label: "later" }),
      arts(n),
    );
    assert.deepEqual(await check(again), await readManifest(streamOf(bytes)), `${n}: same`);
    assert.deepEqual(await check(written), written, `${n}: itself`);
    const other = await writeBundle(
      `${dir.path}/other${n}`,
      testHeader({ captures }),
      arts(n, "y"),
    );
    assert.equal(await check(other), undefined, `${n}: last artifact differs`);
    assert.equal(
      await check({ ...written, artifacts: written.artifacts.slice(0, -1) }),
      undefined,
      `${n}: one artifact fewer`,
    );
    assert.equal(
      await check({
        ...written,
        captures: { ...captures, git: { ...captures.git, created_at: "now" } },
      }),
      undefined,
      `${n}: captures differ`,
    );
    assert.equal(await check({ ...written, captures: {} }), undefined, `${n}: no captures`);
    assert.equal(await check({ ...written, agent_id: "agent-2" }), undefined, `${n}: other agent`);
  }
});
