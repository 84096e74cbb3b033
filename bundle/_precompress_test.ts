import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { createHash } from "node:crypto";
import { MemsnapError } from "../errors.ts";
import type { ArtifactSource } from "../capture/types.ts";
import { aheadOf, Precompressor } from "./_precompress.ts";
import { CUT, type FrameInput, zstdCompressFrames } from "./_zstd_frames.ts";
import { libzstd } from "./_libzstd.ts";
import { concat } from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

const lib = libzstd();
const skipLib = lib === undefined && Deno.env.get("MEMSNAP_REQUIRE_INTEROP") !== "1";
const F = 1 << 14;

function bytes(n: number, seed: number): Uint8Array {
  return new Uint8Array(n).map((_, k) => ((k * 7 + seed) ^ (k >> 7)) & 0xff);
}

/** A readAt source over `data` (which may be shorter or longer than `size`). */
function stable(path: string, data: Uint8Array, size = data.length, reads?: number[]) {
  return {
    path,
    kind: "sqlite",
    size,
    open: () => Promise.reject(new Error("opened")),
    readAt(into: Uint8Array, position: number): number {
      reads?.push(position);
      const n = Math.max(0, Math.min(data.length - position, into.length));
      into.set(data.subarray(position, position + n));
      return n;
    },
  } satisfies ArtifactSource;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c.slice());
  return concat(parts);
}

/** The input the writer gives for `prefix` then one large artifact: bytes, a cut, its tail. */
async function* input(
  prefix: Uint8Array,
  data: Uint8Array,
  frames: number,
): AsyncGenerator<FrameInput> {
  yield prefix;
  yield CUT;
  yield data.subarray(frames * F);
}

Deno.test({
  name:
    "Precompressor compresses whole frames ahead, hashes in order, and the stream is the same bytes",
  ignore: skipLib,
  fn: async () => {
    await using dir = await tempDir();
    const data = bytes(5 * F + 123, 1);
    const prefix = bytes(F + 77, 2);
    const plain = await collect(
      zstdCompressFrames(
        (async function* () {
          yield prefix;
          yield CUT;
          yield data;
        })(),
        3,
        { libzstd: lib!, frameBytes: F },
      ),
    );
    for (const wait of [0, 1, 3, 5]) {
      const spill = `${dir.path}/spill-${wait}`;
      const pre = Precompressor.open(3, spill, { lib: lib!, frameBytes: F })!;
      const reads: number[] = [];
      const s = stable("sqlite/a.sqlite", data, data.length, reads);
      assertEquals(pre.add(s), true);
      assertEquals(pre.add(s), false); // once
      assertEquals(pre.add(stable("sqlite/small", bytes(F - 1, 3))), false); // under a frame
      const a = aheadOf(s)!;
      assertEquals(a.frames, 5);
      // Let the background compress `wait` frames (one call at a time) before the writer.
      while (a.filled < wait) await new Promise((r) => setTimeout(r, 1));
      if (wait > 1) assertEquals((await Deno.lstat(spill)).isFile, true); // frame 0 written
      // prefix: frames 0 (whole) and 1 (77 bytes, cut), then the artifact's 5 from frame 2.
      const out = await collect(
        zstdCompressFrames(input(prefix, data, 5), 3, {
          libzstd: lib!,
          frameBytes: F,
          lookahead: pre.lookahead(new Map([[a, 2]])),
        }),
      );
      assertEquals(out, plain);
      assertEquals(reads.slice(0, 5), [0, F, 2 * F, 3 * F, 4 * F]); // in order, once each
      a.read(new Uint8Array(data.length - 5 * F), 5 * F); // the tail, as the writer reads it
      assertEquals(a.finish(), createHash("sha256").update(data).digest("hex"));
      assertEquals(pre.add(stable("sqlite/late", data)), false); // sealed
      await pre.close();
      await pre.close();
      await Deno.lstat(spill).then(() => assertEquals("spill left", ""), () => {});
    }
  },
});

Deno.test({
  name: "Precompressor keeps at most maxAhead frames compressed and not taken",
  ignore: skipLib,
  fn: async () => {
    await using dir = await tempDir();
    const pre = Precompressor.open(3, `${dir.path}/spill`, {
      lib: lib!,
      frameBytes: F,
      maxAhead: 2,
    })!;
    const b = stable("sqlite/b", bytes(6 * F, 4));
    const a = stable("sqlite/a", bytes(3 * F, 5));
    pre.add(b);
    pre.add(a); // before b in path order
    await new Promise((r) => setTimeout(r, 200));
    // b's first frame started before a came; then a's, in path order; then the limit.
    assertEquals([aheadOf(a)!.filled, aheadOf(b)!.filled], [1, 1]);
    await pre.close();
  },
});

Deno.test({
  name: "Precompressor: a source that shrank fails the frame it could not fill, when taken",
  ignore: skipLib,
  fn: async () => {
    await using dir = await tempDir();
    const pre = Precompressor.open(3, `${dir.path}/spill`, { lib: lib!, frameBytes: F })!;
    const data = bytes(4 * F, 6);
    const s = stable("sqlite/a", data.subarray(0, 2 * F + 5), data.length);
    pre.add(s);
    const a = aheadOf(s)!;
    await new Promise((r) => setTimeout(r, 100));
    let caught: unknown;
    try {
      await collect(
        zstdCompressFrames(input(new Uint8Array(), data, 4), 3, {
          libzstd: lib!,
          frameBytes: F,
          lookahead: pre.lookahead(new Map([[a, 0]])),
        }),
      );
    } catch (e) {
      caught = e;
    }
    assertEquals(caught instanceof MemsnapError, true);
    assertEquals(
      (caught as Error).message,
      'Cannot pack artifact "sqlite/a": it yielded 32773 bytes but its declared size is 65536 (the file changed during capture)',
    );
    await pre.close();
  },
});

Deno.test("Precompressor.open() without a libzstd gives nothing (the writer compresses in order)", () => {
  assertEquals(Precompressor.open(3, "/nonexistent", { lib: false }), undefined);
});
