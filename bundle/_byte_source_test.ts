import assert from "node:assert/strict";
import { BYOB_READ_SIZE, ByteSource } from "./_byte_source.ts";
import { CorruptBundleError } from "../errors.ts";

/** A byte stream over `data` that answers each read with at most `max` bytes. */
function byteStream(data: Uint8Array, max: number): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 4096,
    pull(controller) {
      const req = controller.byobRequest!;
      const view = req.view! as Uint8Array;
      const n = Math.min(view.length, max, data.length - pos);
      if (n === 0) {
        controller.close();
        req.respond(0);
        return;
      }
      view.set(data.subarray(pos, pos + n));
      pos += n;
      req.respond(n);
    },
  });
}

const data = new Uint8Array(3 * BYOB_READ_SIZE + 1234).map((_, i) => (i * 31 + (i >> 9)) & 0xff);

Deno.test("ByteSource reads a byte stream into one reused buffer, with exact reads across reads", async () => {
  for (const max of [BYOB_READ_SIZE, 100_000, 777]) {
    const src = new ByteSource(byteStream(data, max));
    const head = await src.readExact(1000);
    assert.deepEqual(head, data.subarray(0, 1000));
    const parts: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let at = 1000;
    const n = 2 * BYOB_READ_SIZE + 5;
    for await (const c of src.stream(n)) {
      // Each view is valid until the next read: check it now.
      assert.deepEqual(c, data.subarray(at, at + c.length));
      at += c.length;
      parts.push(c);
      buffers.add(c.buffer);
    }
    assert.equal(at, 1000 + n);
    // The views of earlier reads were detached by the later reads (one buffer, transferred).
    assert.ok(parts.slice(0, -1).some((p) => p.byteLength === 0), `max ${max}`);
    const rest = data.length - at;
    const tail = await src.readExact(rest - 10);
    assert.deepEqual(tail, data.subarray(at, at + rest - 10)); // a copy, still valid
    await src.skip(10);
    assert.equal(await src.readExact(1), null);
    assert.equal(src.consumed, data.length);
    assert.deepEqual(tail, data.subarray(at, at + rest - 10));
  }
});

Deno.test("ByteSource iterates a stream that is not a byte stream, and reports truncation", async () => {
  const src = new ByteSource(ReadableStream.from([data.subarray(0, 10), data.subarray(10, 30)]));
  assert.deepEqual(await src.readExact(25), data.subarray(0, 25));
  await assert.rejects(src.readExact(10, "x"), CorruptBundleError);
  const b = new ByteSource(byteStream(data.subarray(0, 100), 30));
  await assert.rejects(b.skip(101, "y"), CorruptBundleError);
});

Deno.test("ByteSource.cancel() cancels a byte stream", async () => {
  let cancelled = false;
  const s = new ReadableStream({
    type: "bytes",
    pull(c) {
      const req = c.byobRequest!;
      (req.view as Uint8Array).fill(7);
      req.respond(req.view!.byteLength);
    },
    cancel() {
      cancelled = true;
    },
  });
  const src = new ByteSource(s);
  assert.equal((await src.readExact(10))?.length, 10);
  await src.cancel();
  assert.ok(cancelled);
});
