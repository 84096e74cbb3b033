// Copyright memsnap authors. MIT license.
// Private: reads the manifest, the first tar entry of a bundle, from a byte stream, then
// cancels the stream. A small fallback used until bundle/read_manifest.ts is available.
import { CorruptBundleError } from "../errors.ts";
import type { Manifest } from "../bundle/types.ts";

const MAX_MANIFEST = 64 * 1024 * 1024;

function octal(b: Uint8Array, off: number, len: number): number {
  const s = new TextDecoder().decode(b.subarray(off, off + len)).replace(/\0.*$/s, "").trim();
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

/** Reads `manifest.json`, the first entry, and cancels the stream. */
export async function readFirstManifest(source: ReadableStream<Uint8Array>): Promise<Manifest> {
  const reader = source.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need = 512;
  let size = -1;
  try {
    for (;;) {
      while (have < need) {
        const { done, value } = await reader.read();
        if (done) {
          throw new CorruptBundleError(
            "truncated",
            "manifest.json",
            "Cannot read the manifest: the bundle ends early",
          );
        }
        chunks.push(value);
        have += value.length;
      }
      const buf = new Uint8Array(have);
      let o = 0;
      for (const c of chunks) {
        buf.set(c, o);
        o += c.length;
      }
      if (size < 0) {
        const name = new TextDecoder().decode(buf.subarray(0, 100)).replace(/\0.*$/s, "");
        size = octal(buf, 124, 12);
        if (name !== "manifest.json" || !(size >= 0) || size > MAX_MANIFEST) {
          throw new CorruptBundleError(
            "manifest_first",
            name,
            "Cannot read the manifest: the first entry is not manifest.json",
          );
        }
        need = 512 + size;
        continue;
      }
      const text = new TextDecoder().decode(buf.subarray(512, 512 + size));
      try {
        return JSON.parse(text) as Manifest;
      } catch (e) {
        throw new CorruptBundleError(
          "manifest_json",
          "manifest.json",
          "Cannot parse the manifest",
          {
            cause: e,
          },
        );
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
