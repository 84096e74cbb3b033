import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { CorruptBundleError, UnsafeBundleError, VerificationError } from "../errors.ts";
import { verifyBundle } from "./verify_bundle.ts";
import { assertVerified } from "./assert_verified.ts";
import { writeBundle } from "./write_bundle.ts";
import { canonicalJson } from "./canonical_json.ts";
import { decoderConfig } from "./_zstd.ts";
import type { Manifest } from "./types.ts";
import {
  concat,
  craftBundle,
  craftInner,
  EOA,
  rawEntry,
  source,
  streamOf,
  testHeader,
  testSigner,
  testVerifier,
  xorCipher,
  xorDecipher,
  zstd,
} from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

const enc = new TextEncoder();
const ARTS = () => [
  source("memdir/a.md", "alpha\n"),
  source("memdir/b.md", "beta\n"),
  source("state/s.json", "{}", { kind: "state" }),
];

async function write(opts: Parameters<typeof writeBundle>[3] = {}): Promise<Uint8Array> {
  await using dir = await tempDir();
  await writeBundle(`${dir.path}/b`, testHeader(), ARTS(), opts);
  return await Deno.readFile(`${dir.path}/b`);
}

/** Finds the offset of an outer entry's data. */
function dataOffset(bundle: Uint8Array, name: string): number {
  for (let off = 0; off + 512 <= bundle.length;) {
    const n = new TextDecoder().decode(bundle.subarray(off, off + 100)).replace(/\0.*$/s, "");
    const size = parseInt(new TextDecoder().decode(bundle.subarray(off + 124, off + 135)), 8);
    if (n === name) return off + 512;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no entry ${name}`);
}

Deno.test("verifyBundle() passes a plaintext bundle and checks every artifact", async () => {
  const r = await verifyBundle(streamOf(await write()));
  assert.equal(r.ok, true);
  assert.equal(r.artifacts_checked, true);
  assert.equal(r.signature, "absent");
  assert.deepEqual(r.failures, []);
  assertVerified(r);
});

Deno.test("verifyBundle() reports a tampered payload without throwing", async () => {
  const b = await write();
  const off = dataOffset(b, "payload.tar.zst");
  b[off + 20] = b[off + 20]! ^ 0xff;
  const r = await verifyBundle(streamOf(b));
  assert.equal(r.ok, false);
  assert.ok(r.failures.some((f) => f.check === "payload_hash" && f.path === "payload.tar.zst"));
  assert.throws(() => assertVerified(r), VerificationError);
});

Deno.test("verifyBundle() names the artifact whose hash does not match", async () => {
  const inner = concat([rawEntry({ name: "a" }, "tampered!"), EOA]);
  const r = await verifyBundle(streamOf(craftInner(inner, { a: "original" })));
  assert.equal(r.ok, false);
  assert.deepEqual(r.failures.map((f) => [f.check, f.path]), [["artifact_size", "a"]]);
  const r2 = await verifyBundle(
    streamOf(craftInner(concat([rawEntry({ name: "a" }, "xxxx"), EOA]), { a: "yyyy" })),
  );
  assert.deepEqual(r2.failures.map((f) => [f.check, f.path]), [["artifact_hash", "a"]]);
});

Deno.test("verifyBundle() reports missing and extra artifacts", async () => {
  const inner = concat([rawEntry({ name: "a" }, "1"), rawEntry({ name: "extra" }, "2"), EOA]);
  const r = await verifyBundle(streamOf(craftInner(inner, { a: "1", gone: "3" })));
  assert.deepEqual(
    r.failures.map((f) => [f.check, f.path]).sort(),
    [["extra", "extra"], ["missing", "gone"]],
  );
});

Deno.test("verifyBundle() matches a payload in another order than the manifest's", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 40; i++) files[`d${i % 3}/f${String(i).padStart(2, "0")}`] = `body ${i}`;
  const names = Object.keys(files).sort().reverse();
  const inner = concat([...names.map((n) => rawEntry({ name: n }, files[n]!)), EOA]);
  const r = await verifyBundle(streamOf(craftInner(inner, files)));
  assert.deepEqual(r.failures, []);
  assert.equal(r.ok, true);
  // Out of order, an extra entry and a missing one are still told apart.
  const { [names[5]!]: _gone, ...rest } = files;
  const shuffled = concat([
    ...names.filter((n) => n !== names[5]).map((n, i) =>
      i === 7
        ? concat([rawEntry({ name: "zz" }, "x"), rawEntry({ name: n }, files[n]!)])
        : rawEntry({ name: n }, files[n]!)
    ),
    EOA,
  ]);
  const r2 = await verifyBundle(streamOf(craftInner(shuffled, { ...rest, [names[5]!]: "5" })));
  assert.deepEqual(r2.failures.map((f) => [f.check, f.path]), [["extra", "zz"], [
    "missing",
    names[5],
  ]]);
});

Deno.test("verifyBundle() checks only the payload hash of an encrypted bundle without decipher", async () => {
  const b = await write({ cipher: xorCipher() });
  const r = await verifyBundle(streamOf(b));
  assert.equal(r.ok, true);
  assert.equal(r.artifacts_checked, false);
  const r2 = await verifyBundle(streamOf(b), { decipher: xorDecipher() });
  assert.equal(r2.ok, true);
  assert.equal(r2.artifacts_checked, true);
  const r3 = await verifyBundle(streamOf(b), { decipher: xorDecipher(0x33) });
  assert.equal(r3.ok, false, "wrong key decrypts to garbage");
});

Deno.test("verifyBundle() checks the signature: valid, invalid, absent, not checked", async () => {
  const signed = await write({ signer: testSigner() });
  assert.equal(
    (await verifyBundle(streamOf(signed), { verifier: testVerifier() })).signature,
    "valid",
  );
  assert.equal((await verifyBundle(streamOf(signed))).signature, "not_checked");
  const bad = await verifyBundle(streamOf(signed), { verifier: testVerifier("other") });
  assert.equal(bad.signature, "invalid");
  assert.equal(bad.ok, false);
  assert.equal(bad.failures[0]?.check, "signature");
  const unsigned = await write();
  const r = await verifyBundle(streamOf(unsigned), {
    verifier: testVerifier(),
    requireSignature: true,
  });
  assert.equal(r.signature, "absent");
  assert.deepEqual(r.failures.map((f) => f.check), ["signature_missing"]);
  assert.equal((await verifyBundle(streamOf(unsigned), { verifier: testVerifier() })).ok, true);
});

Deno.test("verifyBundle() stays valid after re-encrypting the payload and updating its size and hash", async () => {
  const b = await write({ cipher: xorCipher(0x11) });
  // Take the bundle apart as another tool would.
  const mOff = dataOffset(b, "manifest.json");
  const mSize = parseInt(
    new TextDecoder().decode(b.subarray(mOff - 512 + 124, mOff - 512 + 135)),
    8,
  );
  const manifest = JSON.parse(new TextDecoder().decode(b.subarray(mOff, mOff + mSize))) as Manifest;
  const pOff = dataOffset(b, "payload.tar.zst.age");
  const cipherText = b.subarray(pOff, pOff + manifest.payload.size);
  const reEncrypted = cipherText.map((x) => x ^ 0x11 ^ 0x22);
  manifest.payload.size = reEncrypted.length;
  manifest.payload.sha256 = createHash("sha256").update(reEncrypted).digest("hex");
  const rebuilt = concat([
    rawEntry({ name: "manifest.json" }, canonicalJson(manifest)),
    rawEntry({ name: "payload.tar.zst.age" }, reEncrypted),
    EOA,
  ]);
  const r = await verifyBundle(streamOf(rebuilt), { decipher: xorDecipher(0x22) });
  assert.deepEqual(r.failures, []);
  assert.equal(r.artifacts_checked, true);
});

Deno.test("verifyBundle() refuses a tar-slip payload", async () => {
  const inner = concat([rawEntry({ name: "../../evil" }, "pwned"), EOA]);
  await assert.rejects(
    verifyBundle(streamOf(craftInner(inner))),
    (e) => e instanceof UnsafeBundleError && e.rule === "path_escape" && e.entry === "../../evil",
  );
});

Deno.test("verifyBundle() refuses a payload inflating over maxTotalSize", async () => {
  const inner = concat([rawEntry({ name: "a" }, new Uint8Array(100_000)), EOA]);
  await assert.rejects(
    verifyBundle(streamOf(craftInner(inner, { a: new Uint8Array(100_000) })), {
      limits: { maxTotalSize: 50_000 },
    }),
    (e) => e instanceof UnsafeBundleError && e.rule === "max_total_size",
  );
});

Deno.test("verifyBundle() refuses a zstd window over the cap", async () => {
  const data = new Uint8Array(1 << 21).map((_, i) => (i * 31) >> 3);
  const inner = concat([rawEntry({ name: "a" }, data), EOA]);
  const bundle = craftBundle(zstd(inner, 22), { a: data });
  assert.equal((await verifyBundle(streamOf(bundle))).ok, true);
  await assert.rejects(
    verifyBundle(streamOf(bundle), { limits: { maxZstdWindowLog: 20 } }),
    (e) => e instanceof UnsafeBundleError && e.rule === "zstd_window",
  );
});

Deno.test("verifyBundle() reports bad zstd as a failure", async () => {
  const r = await verifyBundle(streamOf(craftBundle(enc.encode("definitely not zstd"))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.failures.map((f) => f.check), ["zstd"]);
});

Deno.test("verifyBundle() reports a payload truncated inside its zstd frame", async () => {
  const full = zstd(concat([rawEntry({ name: "a" }, "x".repeat(5000)), EOA]));
  const r = await verifyBundle(
    streamOf(craftBundle(full.subarray(0, full.length - 5), { a: "x".repeat(5000) })),
  );
  assert.equal(r.ok, false);
  assert.ok(
    r.failures.some((f) => f.check === "zstd" || f.check === "truncated"),
    JSON.stringify(r.failures),
  );
});

Deno.test("verifyBundle() throws on a truncated or corrupt outer tar", async () => {
  const b = await write();
  for (const end of [b.length - 1024, b.length - 1536, 700]) {
    await assert.rejects(
      verifyBundle(streamOf(b.subarray(0, end))),
      (e) => e instanceof CorruptBundleError && e.rule === "truncated",
    );
  }
  const bad = b.slice();
  bad[0] = 0x41; // manifest header checksum no longer matches
  await assert.rejects(
    verifyBundle(streamOf(bad)),
    (e) => e instanceof CorruptBundleError && e.rule === "header_checksum",
  );
});

Deno.test("verifyBundle() refuses unexpected outer entries", async () => {
  for (const b of [await write(), await write({ signer: testSigner() })]) {
    const withExtra = concat([
      b.subarray(0, b.length - 1024),
      rawEntry({ name: "evil.sh" }, "x"),
      EOA,
    ]);
    await assert.rejects(
      verifyBundle(streamOf(withExtra)),
      (e) => e instanceof CorruptBundleError && e.rule === "outer_layout" && e.entry === "evil.sh",
    );
  }
});

Deno.test("verifyBundle() checks a payload over the native-decoder threshold and reports its failures", async () => {
  const big = new Uint8Array(3 << 20);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const inner = concat([rawEntry({ name: "big" }, big), rawEntry({ name: "small" }, "s"), EOA]);
  const payload = zstd(inner);
  const saved = decoderConfig.nativeThreshold;
  decoderConfig.nativeThreshold = 2 << 20;
  try {
    assert.equal(
      (await verifyBundle(streamOf(craftBundle(payload, { big, small: "s" }), 65536))).ok,
      true,
    );
    const r = await verifyBundle(streamOf(craftBundle(payload, { big, small: "t" }), 65536));
    assert.deepEqual(r.failures.map((f) => [f.check, f.path]), [["artifact_hash", "small"]]);
    const bad = payload.slice();
    bad[1000] = bad[1000]! ^ 0xff;
    const r2 = await verifyBundle(streamOf(craftBundle(bad, { big, small: "s" }), 65536));
    assert.equal(r2.ok, false);
    assert.ok(r2.failures.length > 0);
  } finally {
    decoderConfig.nativeThreshold = saved;
  }
});
