import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { FRAME_BYTES, zstdCompressFrames } from "./_zstd_frames.ts";
import { zstdDecompress } from "./_zstd.ts";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
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
  const a = await collect(zstdCompressFrames(chunked(data, 1 << 16), 3, { workers: 0 }));
  const b = await collect(zstdCompressFrames(chunked(data, 3_000_001), 3, { workers: 1 }));
  const c = await collect(zstdCompressFrames(chunked(data, 777), 3, { workers: 2 }));
  assertEquals(b, a);
  assertEquals(c, a);
  const back = await collect(zstdDecompress(chunked(a, 1 << 20), 27));
  assertEquals(back.length, data.length);
  assertEquals(back, data);
});

Deno.test("zstdCompressFrames() writes one frame per FRAME_BYTES, and one for empty input", async () => {
  const frames = async (size: number): Promise<number> => {
    let n = 0;
    for await (const _ of zstdCompressFrames(chunked(input(size), 1 << 20), 3, { workers: 1 })) {
      n++;
    }
    return n;
  };
  assertEquals(await frames(0), 1);
  assertEquals(await frames(FRAME_BYTES), 1);
  assertEquals(await frames(FRAME_BYTES + 1), 2);
});
