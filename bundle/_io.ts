/**
 * Small I/O helpers (private).
 *
 * @module
 */
import { type BundleLimits, bundleLimits } from "./bundle_limits.ts";

/** Bytes as a one-chunk async iterable (none for empty bytes), for APIs that take chunks. */
export async function* oneChunk(data: Uint8Array): AsyncGenerator<Uint8Array> {
  if (data.length > 0) yield data;
}

/** Writes all of `data` to `file`. */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/** Merges partial limits over the defaults, checking each is a positive number. */
export function resolveLimits(partial: Partial<BundleLimits> | undefined): BundleLimits {
  const out = { ...bundleLimits, ...partial };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== "number" || !(v > 0)) {
      throw new RangeError(`Cannot use the bundle limits: ${k} must be a positive number`);
    }
  }
  return out;
}

/** Groups small chunks into buffers of about `size` bytes; passes large chunks through. */
export async function* batch(
  input: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(size);
  let used = 0;
  for await (const c of input) {
    if (c.length >= size / 2) {
      if (used > 0) {
        yield buf.subarray(0, used);
        buf = new Uint8Array(size);
        used = 0;
      }
      yield c;
      continue;
    }
    if (used + c.length > size) {
      yield buf.subarray(0, used);
      buf = new Uint8Array(size);
      used = 0;
    }
    buf.set(c, used);
    used += c.length;
  }
  if (used > 0) yield buf.subarray(0, used);
}

/** Turns a TransformStream into an async iterable stage. */
export function throughTransform(
  input: AsyncIterable<Uint8Array>,
  transform: TransformStream<Uint8Array, Uint8Array>,
): AsyncIterable<Uint8Array> {
  return ReadableStream.from(input).pipeThrough(transform);
}

/**
 * `n` (a size) as a small integer when it is one. Sizes from `stat` arrive as doubles, and
 * once one double is stored in a field, V8 boxes that field in every object of the same shape
 * (a 16-byte heap number each): with a capture descriptor and a manifest entry per artifact,
 * ~4.6 MB for the 147,000 artifacts of a 2 GiB memory.
 */
export function smallInt(n: number): number {
  return n >= 0 && n <= 0x3fffffff ? n | 0 : n;
}

/** Lowercase hex of bytes. */
export function hex(bytes: Uint8Array): string {
  // Written as bytes and decoded: one flat string (concatenating pieces would make a rope of
  // them, ~1 KB per digest kept in a manifest).
  const out = bytes.length <= 64 ? HEX_OUT : new Uint8Array(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out[2 * i] = HEX_DIGITS[b >> 4]!;
    out[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  return ASCII.decode(out.subarray(0, bytes.length * 2));
}

const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const HEX_OUT = new Uint8Array(128);
const ASCII = new TextDecoder();

/**
 * Frees a buffer's memory at once by detaching it (`ArrayBuffer.prototype.transfer`), for a
 * buffer nothing will read again; a no-op where `transfer` is missing.
 */
export function release(buffer: ArrayBufferLike): void {
  const b = buffer as ArrayBuffer & { transfer?: (n: number) => ArrayBuffer; detached?: boolean };
  if (typeof b.transfer === "function" && b.detached === false) b.transfer(0);
}

/**
 * A whole file's bytes, read into one buffer of its size (plus a byte, to see a file that
 * grew, which is then read to its end all the same). `Deno.readFileSync` holds the bytes twice
 * while it reads (its own buffer, then the copy it returns): 38 MB for a 19 MB git index.
 */
export function readWholeFile(path: string): Uint8Array {
  using file = Deno.openSync(path, { read: true });
  let buf = new Uint8Array(file.statSync().size + 1);
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      const grown = new Uint8Array(buf.length * 2);
      grown.set(buf);
      buf = grown;
    }
    const k = file.readSync(buf.subarray(n));
    if (k === null || k === 0) break;
    n += k;
  }
  return buf.subarray(0, n);
}

/** The bytes of `parts`, one after another, in a new buffer. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
