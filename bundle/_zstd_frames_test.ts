import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { zstdDecompressSync } from "node:zlib";
import { FRAME_BYTES, zstdCompressFrames } from "./_zstd_frames.ts";
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

Deno.test({
  name:
    "zstdCompressFrames() with libzstd and reuseOutput: a frame stays as it was while the next is asked for and compressed",
  ignore: skipLib,
  fn: async () => {
    // Frames of different content, so that a frame overwritten by another shows.
    const data = input(FRAME_BYTES * 6 + 99);
    for (let at = 0; at < data.length; at += FRAME_BYTES) {
      crypto.getRandomValues(data.subarray(at, at + 4096));
    }
    const want = await Array.fromAsync(
      zstdCompressFrames(chunked(data, 1 << 20), 3, { libzstd: lib!, reuseOutput: false }),
    );
    for (const calls of [1, 2, 3]) {
      // A consumer writing frame f while it asks for frame f + 1 (as writeBundle does): the
      // view of frame f is checked once frame f + 1 has come, then let go of.
      let held: Uint8Array | undefined;
      let k = 0;
      for await (
        const f of zstdCompressFrames(chunked(data, 1 << 20), 3, {
          libzstd: lib!,
          calls,
          reuseOutput: true,
        })
      ) {
        if (held !== undefined) assertEquals(held, want[k - 1], `calls ${calls}, frame ${k - 1}`);
        held = f;
        k++;
      }
      assertEquals(held, want[k - 1]);
      assertEquals(k, want.length);
    }
  },
});
