/**
 * One zstd frame of one segment (private), shared by the main thread and the compressor workers
 * so that both produce the same bytes.
 *
 * @module
 */
import { zstdCompressSync } from "node:zlib";

/** Compresses `segment` into one complete zstd frame (a fresh buffer the caller owns). */
export function compressFrame(
  segment: Uint8Array,
  params: Record<number, number>,
): Uint8Array<ArrayBuffer> {
  const out = zstdCompressSync(segment, { params });
  // A Buffer may be a view of a larger or shared buffer: then copy into one of its own.
  if (out.byteOffset === 0 && out.byteLength === out.buffer.byteLength) {
    return new Uint8Array(out.buffer as ArrayBuffer);
  }
  return new Uint8Array(out);
}
