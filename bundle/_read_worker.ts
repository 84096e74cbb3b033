/**
 * Reads small files for the bundle writer on another thread (private; see `_read_ahead.ts`).
 *
 * Given the writer's list of small file artifacts in tar order, it reads them one after another
 * into batch buffers laid out as inner tar (header, data, padding), and posts each batch with
 * where every artifact's data starts. The writer hashes those bytes and hands the batch to the
 * compressor as it is: the `open`, `read` and `close` calls of thousands of files (most of the
 * writer's time per small file) happen on this thread. A file that cannot be read, or that is
 * not its declared size, ends its batch before it; the writer reads it itself, as it would
 * without this worker, which reports the same error.
 *
 * Messages in: `{ op: "start", items, mtime }` once, `{ op: "buf", buf }` to give a batch buffer
 * back, `{ op: "stop" }`. Out: `{ buf, used, first, at, failed }` per batch (`at`: data offsets).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { encodeHeaderInto, headerLength, padding } from "./_tar_header.ts";

/** One small file artifact, in tar order. */
export interface ReadItem {
  /** Path in the bundle. */
  path: string;
  /** File to read. */
  file: string;
  size: number;
  mode: number;
  /** Whether the artifact before it in the tar is not an item (a batch ends before it). */
  brk: boolean;
}

let items: ReadItem[] = [];
let mtime = 0;
let next = 0;
const free: ArrayBuffer[] = [];

/** Reads up to `into.length` bytes of `path` (fewer at its end); -1 if it cannot be read. */
function readInto(path: string, into: Uint8Array): number {
  try {
    using file = Deno.openSync(path, { read: true });
    let n = 0;
    while (n < into.length) {
      const k = file.readSync(into.subarray(n));
      if (k === null || k === 0) break;
      n += k;
    }
    return n;
  } catch {
    return -1;
  }
}

function run(): void {
  while (next < items.length && free.length > 0) {
    const buf = free.pop()!;
    const u8 = new Uint8Array(buf);
    const first = next;
    const at: number[] = [];
    let used = 0;
    let failed = false;
    while (next < items.length) {
      const it = items[next]!;
      if (next > first && it.brk) break;
      const h = headerLength(it.path, it.size);
      // (one byte more than declared: room to see a file that grew)
      if (used + h + it.size + Math.max(padding(it.size), 1) > u8.length) {
        if (next > first) break;
        failed = true; // larger than a batch: the writer reads it itself
        next++;
        break;
      }
      const start = used + encodeHeaderInto(u8, used, { ...it, mtime });
      const n = readInto(it.file, u8.subarray(start, start + it.size + 1));
      if (n !== it.size) {
        failed = true; // the writer reads this one itself
        next++;
        break;
      }
      const end = start + it.size + padding(it.size);
      u8.fill(0, start + it.size, end);
      at.push(start);
      used = end;
      next++;
    }
    const offsets = new Int32Array(at);
    self.postMessage({ buf, used, first, at: offsets, failed }, [buf, offsets.buffer]);
  }
}

self.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  if (m.op === "start") {
    items = m.items;
    mtime = m.mtime;
    for (const b of m.bufs as ArrayBuffer[]) free.push(b);
  } else if (m.op === "buf") free.push(m.buf);
  else if (m.op === "stop") return self.close();
  run();
};
