import assert from "node:assert/strict";
import { fileByteStream } from "./_file_stream.ts";

Deno.test("fileByteStream() hands onRead each read's bytes at their file offset, default and BYOB readers", async () => {
  const data = new Uint8Array(1000).map((_, i) => i & 0xff);
  const file = () => {
    let pos = 0;
    return {
      read(p: Uint8Array): Promise<number | null> {
        if (pos >= data.length) return Promise.resolve(null);
        const n = Math.min(p.length, 70, data.length - pos); // short reads
        p.set(data.subarray(pos, pos + n));
        pos += n;
        return Promise.resolve(n);
      },
      close() {},
    };
  };
  // Marks byte 150 and byte 999 wherever the reads fall.
  const mark = (bytes: Uint8Array, at: number) => {
    for (const i of [150, 999]) if (i >= at && i < at + bytes.length) bytes[i - at] = 0xee;
  };
  const want = data.slice();
  want[150] = 0xee;
  want[999] = 0xee;
  const viaDefault = await new Response(fileByteStream(file(), 128, mark)).bytes();
  assert.deepEqual(viaDefault, want);
  const reader = fileByteStream(file(), 128, mark).getReader({ mode: "byob" });
  const got: number[] = [];
  let buf = new ArrayBuffer(300);
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buf));
    if (done) break;
    got.push(...value);
    buf = value.buffer;
  }
  assert.deepEqual(new Uint8Array(got), want);
});
