import assert from "node:assert/strict";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CorruptBundleError, UnsafeBundleError } from "../errors.ts";
import { zstdCompress, zstdDecompress, zstdDecompressNative } from "./_zstd.ts";
import { concat } from "../tests/bundle_helpers.ts";

async function* chunks(b: Uint8Array, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const DECODERS = [["fzstd", zstdDecompress], ["native", zstdDecompressNative]] as const;
let decode: typeof zstdDecompress = zstdDecompress;

async function inflate(b: Uint8Array, windowLog = 27): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of decode(chunks(b), windowLog)) parts.push(c);
  return concat(parts);
}

const data = new Uint8Array(600_000).map((_, i) => (i * 2654435761) >>> 27);

Deno.test("zstdCompress() output is standard zstd with a checksum, and deterministic", async () => {
  const a: Uint8Array[] = [];
  for await (const c of zstdCompress(chunks(data, 7000), 3)) a.push(c);
  const b: Uint8Array[] = [];
  for await (const c of zstdCompress(chunks(data, 65536), 3)) b.push(c);
  assert.deepEqual(concat(a), concat(b));
  assert.deepEqual(new Uint8Array(zstdDecompressSync(concat(a))), data);
  assert.equal(concat(a)[4]! & 0x04, 0x04, "content checksum flag");
});

for (const [name, fn] of DECODERS) {
  Deno.test(`zstdDecompress() [${name}] inflates single and concatenated frames`, async () => {
    decode = fn;
    const f = new Uint8Array(zstdCompressSync(data));
    assert.deepEqual(await inflate(f), data);
    assert.deepEqual(await inflate(concat([f, f])), concat([data, data]));
  });
}

for (const [name, fn] of DECODERS) {
  Deno.test(`zstdDecompress() [${name}] refuses garbage, trailing garbage, truncation, skippable frames`, async () => {
    decode = fn;
    const f = new Uint8Array(zstdCompressSync(data));
    const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 9]);
    for (
      const bad of [
        new TextEncoder().encode("not zstd at all"),
        concat([f, new Uint8Array([1, 2, 3, 4, 5])]),
        f.subarray(0, f.length - 3),
        f.subarray(0, 3),
        new Uint8Array(0),
        concat([skippable, f]),
      ]
    ) {
      await assert.rejects(
        inflate(bad),
        (e) => e instanceof CorruptBundleError && e.rule === "zstd",
      );
    }
  });
}

for (const [name, fn] of DECODERS) {
  Deno.test(`zstdDecompress() [${name}] refuses a window over the cap before inflating`, async () => {
    decode = fn;
    const f = new Uint8Array(
      zstdCompressSync(data, { params: { [constants.ZSTD_c_windowLog]: 20 } }),
    );
    assert.deepEqual(await inflate(f, 20), data);
    await assert.rejects(
      inflate(f, 19),
      (e) => e instanceof UnsafeBundleError && e.rule === "zstd_window",
    );
  });
}

for (const [name, fn] of DECODERS) {
  Deno.test(`zstdDecompress() [${name}] yields a zstd bomb in bounded pieces`, async () => {
    decode = fn;
    const bomb = new Uint8Array(zstdCompressSync(new Uint8Array(64 << 20)));
    assert.ok(bomb.length < 5_000, `bomb of ${bomb.length} bytes`);
    let total = 0;
    let largest = 0;
    for await (const c of decode(chunks(bomb, 1 << 20), 27)) {
      total += c.length;
      largest = Math.max(largest, c.length);
      if (total >= 16 << 20) break; // a reader stops at its cap
    }
    assert.ok(largest <= 128 * 1024, `piece of ${largest} bytes`);
  });
}
