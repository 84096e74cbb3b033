/**
 * Worker side of the native zstd decoder (private).
 *
 * Runs `node:zlib`'s zstd decompressor in its own worker: Deno 2.9 raises some of its decode
 * errors as uncaught exceptions instead of `error` events; here a global handler turns them
 * into an error message and nothing else is affected.
 *
 * Protocol, main → worker: `{ windowLogMax }` once; then `Uint8Array` inputs; `"ack"` after
 * each output is consumed; `"end"` after the last input. Worker → main: `{ out }` (an owned
 * buffer), `{ consumed: true }` when an input is processed, `{ done: true }` at the end,
 * `{ error }` on any failure. At most 16 outputs are unacknowledged before the decoder pauses.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { constants, createZstdDecompress, type ZstdDecompress } from "node:zlib";

const MAX_UNACKED = 16;
let z: ZstdDecompress | undefined;
let unacked = 0;
let failed = false;

function fail(message: string): void {
  if (failed) return;
  failed = true;
  self.postMessage({ error: message });
}

self.addEventListener("error", (e) => {
  e.preventDefault();
  fail(e.message.replace(/^Uncaught (Error: )?/, ""));
});
self.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  fail(String(e.reason));
});

self.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  if (failed) return;
  if (z === undefined) {
    z = createZstdDecompress({
      params: { [constants.ZSTD_d_windowLogMax]: m.windowLogMax },
      chunkSize: 128 * 1024,
    });
    z.on("data", (out: Uint8Array) => {
      const copy = new Uint8Array(out);
      self.postMessage({ out: copy }, [copy.buffer]);
      if (++unacked >= MAX_UNACKED) z!.pause();
    });
    z.on("error", (e: Error) => fail(e.message));
    z.on("end", () => self.postMessage({ done: true }));
    return;
  }
  if (m === "ack") {
    if (--unacked < MAX_UNACKED && z.isPaused()) z.resume();
  } else if (m === "end") {
    z.end();
  } else {
    z.write(m as Uint8Array, () => self.postMessage({ consumed: true }));
  }
};
