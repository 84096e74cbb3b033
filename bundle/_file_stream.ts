/**
 * A file as a byte stream (private): what the bundle reader, the CLI and the sqlite plugin
 * read files through.
 *
 * @module
 */

/**
 * A whole file as a byte stream, closing the file at the end, on a read error and on cancel.
 * A default reader gets `chunk`-byte reads (the last one shorter); a BYOB reader (the bundle
 * reader's `ByteSource`, the bundle writer) has each of its buffers filled, short reads
 * joined, so it reads the whole file into one reused buffer instead of a fresh one per chunk.
 * `onRead(bytes, offset)` may rewrite the bytes read, at their offset in the file, before they
 * are handed out.
 */
export function fileByteStream(
  file: Pick<Deno.FsFile, "read" | "close">,
  chunk: number,
  onRead?: (bytes: Uint8Array, offset: number) => void,
): ReadableStream<Uint8Array> {
  let open = true;
  let pos = 0;
  const close = (): void => {
    if (!open) return;
    open = false;
    file.close();
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunk,
    async pull(controller) {
      const req = controller.byobRequest!;
      const view = req.view! as Uint8Array<ArrayBuffer>;
      const buf = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      let n = 0;
      try {
        while (n < buf.length) {
          const r = await file.read(buf.subarray(n));
          if (r === null) break;
          n += r;
        }
      } catch (e) {
        if (!open) return; // cancelled while reading
        close();
        throw e;
      }
      if (!open) return;
      if (n > 0) {
        onRead?.(buf.subarray(0, n), pos);
        pos += n;
        req.respond(n);
      }
      if (n < buf.length) {
        close();
        controller.close();
        if (n === 0) req.respond(0);
      }
    },
    cancel: close,
  });
}
