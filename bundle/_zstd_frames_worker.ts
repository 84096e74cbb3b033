/**
 * Worker side of the parallel zstd compressor (private): compresses each input segment it is
 * sent into one complete zstd frame. Protocol (main → worker): `{ id, buf, len, params }` with
 * `buf` transferred; worker → main: `{ id, out, buf }` with the frame `out` and the input buffer
 * `buf` (for reuse) transferred, or `{ id, error }`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { compressFrame } from "./_zstd_frame.ts";

self.onmessage = (ev: MessageEvent) => {
  const { id, buf, len, params } = ev.data as {
    id: number;
    buf: ArrayBuffer;
    len: number;
    params: Record<number, number>;
  };
  try {
    const out = compressFrame(new Uint8Array(buf, 0, len), params);
    self.postMessage({ id, out, buf }, [out.buffer, buf]);
  } catch (e) {
    self.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
