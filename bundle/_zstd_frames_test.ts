import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { zstdDecompressSync } from "node:zlib";
import fc from "fast-check";
import {
  type CompressFramesOptions,
  CUT,
  FRAME_BYTES,
  type FrameInput,
  type FrameLookahead,
  zstdCompressFrames,
} from "./_zstd_frames.ts";
import { compressFrame } from "./_zstd_frame.ts";
import { zstdParams } from "./_zstd.ts";
import { zstdDecompress } from "./_zstd.ts";
import { libzstd } from "./_libzstd.ts";
import { concat } from "../tests/bundle_helpers.ts";

const lib = libzstd();
// Without a system libzstd these tests are skipped, except where interop tools are required
// (.ci/run installs zstd, and with it libzstd): there a missing library fails them.
const skipLib = lib === undefined && Deno.env.get("MEMSNAP_REQUIRE_INTEROP") !== "1";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return concat(parts);
}

function input(size: number): Uint8Array {
  const text = new TextEncoder().encode("the agent remembered the meeting notes; ");
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += text.length) out.set(text.subarray(0, size - i), i);
  crypto.getRandomValues(out.subarray(size >> 1, (size >> 1) + 65536));
  return out;
}

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

Deno.test("zstdCompressFrames() bytes do not depend on the worker count or input chunking", async () => {
  const data = input(FRAME_BYTES * 2 + 12345);
  const builtin = { libzstd: false } as const;
  const a = await collect(
    zstdCompressFrames(chunked(data, 1 << 16), 3, { ...builtin, workers: 0 }),
  );
  const b = await collect(
    zstdCompressFrames(chunked(data, 3_000_001), 3, { ...builtin, workers: 1 }),
  );
  const c = await collect(zstdCompressFrames(chunked(data, 777), 3, { ...builtin, workers: 2 }));
  assertEquals(b, a);
  assertEquals(c, a);
  const back = await collect(zstdDecompress(chunked(a, 1 << 20), 27));
  assertEquals(back.length, data.length);
  assertEquals(back, data);
});

Deno.test("zstdCompressFrames() writes one frame per FRAME_BYTES, and one for empty input", async () => {
  const frames = async (size: number): Promise<number> => {
    let n = 0;
    for await (
      const _ of zstdCompressFrames(chunked(input(size), 1 << 20), 3, {
        libzstd: false,
        workers: 1,
      })
    ) {
      n++;
    }
    return n;
  };
  assertEquals(await frames(0), 1);
  assertEquals(await frames(FRAME_BYTES), 1);
  assertEquals(await frames(FRAME_BYTES + 1), 2);
});

Deno.test({
  name:
    "zstdCompressFrames() with libzstd: bytes do not depend on the calls in flight or input chunking, and decode",
  ignore: skipLib,
  fn: async () => {
    const data = input(FRAME_BYTES * 3 + 4321);
    const parts = async (calls: number, chunk: number): Promise<Uint8Array[]> => {
      const out: Uint8Array[] = [];
      for await (const f of zstdCompressFrames(chunked(data, chunk), 3, { libzstd: lib!, calls })) {
        out.push(f);
      }
      return out;
    };
    const one = await parts(1, 1 << 16);
    assertEquals(one.length, 4);
    const a = concat(one);
    assertEquals(concat(await parts(2, 3_000_001)), a);
    assertEquals(concat(await parts(3, 777)), a);
    // Each frame is complete: no content size, a checksum; node:zlib, our reader and the CLI
    // decode the whole to the input.
    let off = 0;
    for (const f of one) {
      assertEquals(lib!.findFrameCompressedSize(f), f.length);
      const seg = new Uint8Array(zstdDecompressSync(f));
      assertEquals(seg, data.subarray(off, off + seg.length));
      off += seg.length;
    }
    assertEquals(off, data.length);
    assertEquals(new Uint8Array(zstdDecompressSync(a)), data);
    assertEquals(await collect(zstdDecompress(chunked(a, 1 << 20), 27)), data);
    const cli = await zstdCli(a);
    if (cli !== undefined) assertEquals(cli, data);
    // The default engine is libzstd when it is available.
    assertEquals(await collect(zstdCompressFrames(chunked(data, 1 << 20), 3)), a);
  },
});

Deno.test("zstdCompressFrames() writes one empty frame for empty input, with either engine", async () => {
  for (const engine of [false, lib ?? false] as const) {
    const out: Uint8Array[] = [];
    for await (
      const f of zstdCompressFrames(chunked(new Uint8Array(0), 1), 3, { libzstd: engine })
    ) {
      out.push(f);
    }
    assertEquals(out.length, 1);
    assertEquals(new Uint8Array(zstdDecompressSync(out[0]!)).length, 0);
  }
});

Deno.test({
  name: "zstdCompressFrames() with libzstd: an input error ends the generator with that error",
  ignore: skipLib,
  fn: async () => {
    const data = input(FRAME_BYTES * 2);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunked(data, 1 << 20);
      throw new Error("source failed");
    }
    let caught: unknown;
    try {
      for await (const _ of zstdCompressFrames(failing(), 3, { libzstd: lib! })) {
        // consume
      }
    } catch (e) {
      caught = e;
    }
    assertEquals((caught as Error).message, "source failed");
  },
});

/** `zstd -dc` of the bytes, or undefined when the CLI is not installed. */
async function zstdCli(bytes: Uint8Array): Promise<Uint8Array | undefined> {
  let child;
  try {
    child = new Deno.Command("zstd", {
      args: ["-q", "-d", "-c"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch {
    return undefined;
  }
  const w = child.stdin.getWriter();
  const writing = w.write(bytes).then(() => w.close());
  const out = await child.output();
  await writing;
  assertEquals(out.code, 0);
  return out.stdout;
}

Deno.test({
  name:
    "zstdCompressFrames() with libzstd and reuseOutput: same frames for a consumer that copies each one",
  ignore: skipLib,
  fn: async () => {
    const data = input(FRAME_BYTES * 4 + 99);
    const run = async (calls: number, reuseOutput: boolean): Promise<Uint8Array[]> => {
      const out: Uint8Array[] = [];
      const frames = zstdCompressFrames(chunked(data, 1 << 20), 3, {
        libzstd: lib!,
        calls,
        reuseOutput,
      });
      for await (const f of frames) out.push(f.slice());
      return out;
    };
    const fresh = await run(2, false);
    assertEquals(fresh.length, 5);
    for (const calls of [1, 2, 3]) assertEquals(await run(calls, true), fresh);
    assertEquals(new Uint8Array(zstdDecompressSync(concat(fresh))), data);
  },
});

/** The segments the format prescribes: cut at each of `cuts` and every `frameBytes` after. */
function referenceSegments(data: Uint8Array, cuts: number[], frameBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  const bounds = [...new Set([...cuts, data.length])].sort((x, y) => x - y);
  for (const end of bounds) {
    while (end - start >= frameBytes) {
      out.push(data.subarray(start, start + frameBytes));
      start += frameBytes;
    }
    if (end > start) out.push(data.subarray(start, end));
    start = end;
  }
  if (out.length === 0) out.push(data.subarray(0, 0));
  return out;
}

/**
 * The input for `data` with `cuts`, leaving out the segments numbered in `skip` (whole ones),
 * in chunks of `chunk` bytes.
 */
async function* cutInput(
  data: Uint8Array,
  cuts: number[],
  frameBytes: number,
  skip: Set<number>,
  chunk: number,
): AsyncGenerator<FrameInput> {
  const segs = referenceSegments(data, cuts, frameBytes);
  const cutSet = new Set(cuts);
  let pos = 0;
  for (const [i, seg] of segs.entries()) {
    if (cutSet.has(pos)) yield CUT;
    if (!skip.has(i)) {
      for (let k = 0; k < seg.length; k += chunk) yield seg.subarray(k, k + chunk);
    }
    pos += seg.length;
  }
}

Deno.test("zstdCompressFrames() cuts a frame at each CUT, with either engine, and with a lookahead gives the same bytes", async () => {
  const frameBytes = 1 << 14;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 9 * frameBytes }),
      fc.array(fc.integer({ min: 0, max: 9 * frameBytes }), { maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      fc.integer({ min: 1, max: 20_000 }),
      async (size, rawCuts, picks, chunk) => {
        const data = input(size);
        const cuts = rawCuts.map((c) => Math.min(c, size));
        const segs = referenceSegments(data, cuts, frameBytes);
        const want = concat(segs.map((seg) => compressFrame(seg, zstdParams(3))));
        const none = new Set<number>();
        for (const workers of [0, 1]) {
          const out = await collect(
            zstdCompressFrames(cutInput(data, cuts, frameBytes, none, chunk), 3, {
              libzstd: false,
              workers,
              frameBytes,
            }),
          );
          assertEquals(out, want);
        }
        // Whole frames left out of the input: filled when reached, or compressed ahead.
        const skip = new Set(
          segs.flatMap((seg, i) => (seg.length === frameBytes && picks[i] ? [i] : [])),
        );
        const frames = [...skip].sort((x, y) => x - y);
        const engines: CompressFramesOptions[] = [
          { libzstd: false, workers: 0 },
          ...(lib ? [{ libzstd: lib, calls: 1 }, { libzstd: lib, calls: 2 }] : []),
        ];
        for (const engine of engines) {
          const plain = engine.libzstd === false ? want : await collect(
            zstdCompressFrames(cutInput(data, cuts, frameBytes, none, chunk), 3, {
              ...engine,
              frameBytes,
            }),
          );
          for (const ahead of engine.libzstd ? [false, true] : [false]) {
            const fills: number[] = [];
            const ctx = lib?.createCCtx(zstdParams(3));
            const lookahead: FrameLookahead = {
              frames,
              take: (index) => {
                if (!ahead || index % 2 === 1) return undefined; // some filled, some ahead
                const out = new Uint8Array(lib!.compressBound(frameBytes));
                return ctx!.compress(segs[index]!, out).then((n) => () => out.subarray(0, n));
              },
              fill(index, into) {
                fills.push(index);
                into.set(segs[index]!);
              },
            };
            const out = await collect(
              zstdCompressFrames(cutInput(data, cuts, frameBytes, skip, chunk), 3, {
                ...engine,
                frameBytes,
                lookahead,
              }),
            );
            ctx?.free();
            assertEquals(out, plain);
            assertEquals(fills, ahead ? frames.filter((i) => i % 2 === 1) : frames);
          }
        }
      },
    ),
    { numRuns: 30 },
  );
});

Deno.test("zstdCompressFrames() with a lookahead: a fill or take error ends the stream with it", async () => {
  const frameBytes = 1 << 14;
  const data = input(frameBytes * 8 + 10);
  const segs = referenceSegments(data, [], frameBytes);
  for (const engine of [false, lib ?? false] as const) {
    for (const how of ["fill", "take"] as const) {
      if (how === "take" && !engine) continue;
      const lookahead: FrameLookahead = {
        frames: [2, 3, 5],
        take: (index) =>
          how === "take" && index === 5
            ? Promise.reject(new Error("the source shrank"))
            : undefined,
        fill(index, into) {
          if (index === 5) throw new Error("the source shrank");
          into.set(segs[index]!);
        },
      };
      let caught: unknown;
      let frames = 0;
      try {
        for await (
          const _ of zstdCompressFrames(
            cutInput(data, [], frameBytes, new Set([2, 3, 5]), 1000),
            3,
            { libzstd: engine, frameBytes, lookahead },
          )
        ) frames++;
      } catch (e) {
        caught = e;
      }
      assertEquals((caught as Error).message, "the source shrank");
      assertEquals(frames <= 5, true); // nothing from frame 5 on
    }
  }
});

Deno.test("zstdCompressFrames() with a lookahead: an input that ends before a lookahead frame is a bug, reported", async () => {
  const frameBytes = 1 << 14;
  const data = input(frameBytes * 3);
  for (const engine of [false, lib ?? false] as const) {
    const lookahead: FrameLookahead = { frames: [5], take: () => undefined, fill() {} };
    let caught: unknown;
    try {
      await collect(
        zstdCompressFrames(chunked(data.subarray(0, frameBytes + 7), 999), 3, {
          libzstd: engine,
          frameBytes,
          lookahead,
        }),
      );
    } catch (e) {
      caught = e;
    }
    assertEquals(
      (caught as Error).message,
      "Cannot compress the payload: the input ended before lookahead frame 5 (a bug)",
    );
  }
});
