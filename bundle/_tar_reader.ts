/**
 * The strict tar reader (private). Accepts ustar (POSIX or GNU magic) regular files, with pax
 * `x` extended headers parsed for `path` and `size` only. Refuses everything else with a
 * typed error naming the rule and the entry.
 *
 * @module
 */
import { BLOCK, padding } from "./_tar_header.ts";
import type { ByteSource } from "./_byte_source.ts";
import { corrupt, unsafe } from "./_errors.ts";
import { checkPath, type PathProblem, PathSet } from "./_paths.ts";
import { oneChunk } from "./_io.ts";

const dec = new TextDecoder("utf-8", { fatal: true });
const latin = new TextDecoder("latin1");

/** Caps for one tar layer. */
export interface TarReadLimits {
  maxEntries: number;
  maxEntrySize: number;
  maxPathLength: number;
  maxPathDepth: number;
  maxPaxSize: number;
}

/** One regular-file entry. Read its body before asking for the next entry (or it is skipped). */
export interface TarEntry {
  path: string;
  size: number;
  mode: number;
  /**
   * The whole body, when the source's chunk held it and its padding (most small entries): a
   * view valid until the next entry is asked for. `body()` then yields it.
   */
  data?: Uint8Array;
  body(): AsyncGenerator<Uint8Array>;
}

const TYPE_NAMES: Record<string, string> = {
  "1": "a hard link",
  "2": "a symbolic link",
  "3": "a character device",
  "4": "a block device",
  "5": "a directory",
  "6": "a FIFO",
  "7": "a contiguous file",
  "L": "a GNU long name record",
  "K": "a GNU long link record",
  "S": "a GNU sparse file",
  "D": "a GNU directory dump",
  "M": "a GNU multi-volume continuation",
  "V": "a GNU volume label",
};

function field(b: Uint8Array, off: number, len: number): Uint8Array {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return nul === -1 ? f : f.subarray(0, nul);
}

/** Whether `String.prototype.trim()` removes byte `c` of a latin1-decoded field. */
function trimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/** Digits of the last {@linkcode octal} field. */
let octalDigits = 0;

/**
 * Reads a header field as an octal number straight from its bytes, as
 * `parseInt(latin.decode(field(b, off, len)).trim(), 8)` would, without decoding it to a string
 * (four decodes per header were a tenth of the reader's time): up to the first NUL, surrounding
 * whitespace ignored. Returns -1 if anything but octal digits is left; the number of digits is
 * in `octalDigits` (0 for an empty field).
 */
function octal(b: Uint8Array, off: number, len: number): number {
  let end = off;
  const stop = off + len;
  while (end < stop && b[end] !== 0) end++;
  let start = off;
  while (start < end && trimmed(b[start]!)) start++;
  while (end > start && trimmed(b[end - 1]!)) end--;
  octalDigits = end - start;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 7) return -1;
    v = v * 8 + d;
  }
  return v;
}

function parseNumber(
  b: Uint8Array,
  off: number,
  len: number,
  what: string,
  entry?: string,
): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // GNU base-256 (big-endian, positive only).
    if (f[0] !== 0x80) throw corrupt("header_field", entry, `has an invalid ${what} field`);
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + f[i]!;
    if (!Number.isSafeInteger(v)) throw corrupt("header_field", entry, `has a ${what} too large`);
    return v;
  }
  const v = octal(b, off, len);
  if (octalDigits === 0) return 0;
  if (v === -1) throw corrupt("header_field", entry, `has an invalid ${what} field`);
  if (!Number.isSafeInteger(v)) throw corrupt("header_field", entry, `has a ${what} too large`);
  return v;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function parsePax(data: Uint8Array, entry: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp === -1 || sp - off > 20) {
      throw corrupt("pax_header", entry, "has a malformed pax record");
    }
    const lenStr = latin.decode(data.subarray(off, sp));
    if (!/^[1-9][0-9]*$/.test(lenStr)) {
      throw corrupt("pax_header", entry, "has a malformed pax record length");
    }
    const len = Number(lenStr);
    const end = off + len;
    if (end > data.length || data[end - 1] !== 0x0a) {
      throw corrupt("pax_header", entry, "has a pax record overrunning its header");
    }
    let rec: string;
    try {
      rec = dec.decode(data.subarray(sp + 1, end - 1));
    } catch {
      throw unsafe("path_encoding", entry, "has a pax record that is not UTF-8");
    }
    const eq = rec.indexOf("=");
    if (eq <= 0) throw corrupt("pax_header", entry, "has a pax record without a key");
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off = end;
  }
  return out;
}

/** Detects duplicate paths and file/directory conflicts among the entries (a `PathSet`). */
export interface PathTracker {
  /** Adds the next entry's path; returns the problem if it collides with an earlier one. */
  add(path: string): PathProblem | undefined;
}

/**
 * Reads regular-file entries from a tar stream. After the end-of-archive marker, the rest of
 * the stream must be zero bytes.
 */
export async function* readTar(
  src: ByteSource,
  limits: TarReadLimits,
  seen: PathTracker = new PathSet(),
): AsyncGenerator<TarEntry> {
  let count = 0;
  let pax: Map<string, string> | undefined;
  let last: string | undefined;
  for (;;) {
    // A view when the chunk holds the header (used only before the source is read again).
    const h = src.takeBuffered(BLOCK) ?? await src.readExact(BLOCK, last);
    if (h === null) {
      if (pax) throw corrupt("truncated", last, "is truncated after its pax header");
      throw corrupt("truncated", undefined, "the archive ends without its end-of-archive marker");
    }
    if (isZero(h)) {
      if (pax) throw corrupt("pax_header", last, "has a pax header followed by nothing");
      await src.expectZeros("trailing_data", "non-zero bytes follow the end-of-archive marker");
      return;
    }
    // Checksum first: nothing in a header is trusted before it.
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const stored = octal(h, 148, 8);
    if (stored === -1 || octalDigits === 0 || octalDigits > 7 || stored !== sum) {
      throw corrupt(
        "header_checksum",
        undefined,
        last === undefined
          ? "the first header has a bad checksum"
          : `the header after entry ${JSON.stringify(last)} has a bad checksum`,
      );
    }
    // "ustar" then "\x0000" (POSIX) or "  \x00" (GNU).
    const ustar = h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 &&
      h[261] === 0x72;
    const posix = ustar && h[262] === 0 && h[263] === 0x30 && h[264] === 0x30;
    if (!posix && !(ustar && h[262] === 0x20 && h[263] === 0x20 && h[264] === 0)) {
      throw corrupt("header_format", undefined, "has a header that is not ustar");
    }
    let rawName: Uint8Array = field(h, 0, 100);
    const prefix = posix ? field(h, 345, 155) : new Uint8Array(0);
    if (prefix.length > 0) {
      const joined = new Uint8Array(prefix.length + 1 + rawName.length);
      joined.set(prefix, 0);
      joined[prefix.length] = 0x2f;
      joined.set(rawName, prefix.length + 1);
      rawName = joined;
    }
    let path: string;
    try {
      path = dec.decode(rawName);
    } catch {
      throw unsafe("path_encoding", latin.decode(rawName), "has a path that is not UTF-8");
    }
    const type = String.fromCharCode(h[156]!);
    let size = parseNumber(h, 124, 12, "size", path);

    if (type === "x") {
      if (pax) throw corrupt("pax_header", path, "has two pax headers in a row");
      if (size > limits.maxPaxSize) {
        throw unsafe(
          "max_pax_size",
          path,
          `has a pax header larger than ${limits.maxPaxSize} bytes`,
        );
      }
      const data = await src.readExact(size, path);
      if (data === null) throw corrupt("truncated", path, "is truncated");
      await src.skip(padding(size), path);
      pax = parsePax(data, path);
      for (const key of pax.keys()) {
        if (key.startsWith("GNU.sparse.")) {
          throw unsafe("entry_type", pax.get("path") ?? path, "is a GNU sparse file");
        }
      }
      last = pax.get("path") ?? last;
      continue;
    }
    if (type === "g") throw unsafe("pax_global", path, "is a pax global header");

    if (pax) {
      const p = pax.get("path");
      if (p !== undefined) path = p;
      const s = pax.get("size");
      if (s !== undefined) {
        if (!/^[0-9]{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) {
          throw corrupt("pax_header", path, "has an invalid pax size");
        }
        size = Number(s);
      }
      pax = undefined;
    }
    last = path;
    if (type !== "0" && type !== "\x00") {
      const what = TYPE_NAMES[type] ?? `an entry of unknown type ${JSON.stringify(type)}`;
      throw unsafe("entry_type", path, `is ${what}, not a regular file`);
    }
    const problem = checkPath(path, limits.maxPathLength, limits.maxPathDepth);
    if (problem) throw unsafe(problem.rule, path, problem.state);
    const clash = seen.add(path);
    if (clash) throw unsafe(clash.rule, path, clash.state);
    if (++count > limits.maxEntries) {
      throw unsafe("max_entries", path, `is beyond the cap of ${limits.maxEntries} entries`);
    }
    if (size > limits.maxEntrySize) {
      throw unsafe(
        "max_entry_size",
        path,
        `is larger than the cap of ${limits.maxEntrySize} bytes`,
      );
    }
    const mode = parseNumber(h, 100, 8, "mode", path) & 0o7777;
    // A body the chunk holds whole, padding included, is taken at once: no stream, skip or
    // promise for it (tens of thousands of small files).
    const whole = src.takeBuffered(size + padding(size));
    if (whole !== undefined) {
      const data = whole.subarray(0, size);
      yield { path, size, mode, data, body: () => oneChunk(data) };
      continue;
    }
    // What is left of the body is counted from the source's position, so body() hands out the
    // source's own stream (one async generator less per chunk than a wrapper counting it).
    const start = src.consumed;
    const entryPath = path;
    yield {
      path,
      size,
      mode,
      body: () => src.stream(size - (src.consumed - start), entryPath),
    };
    await src.skip(size - (src.consumed - start) + padding(size), path);
  }
}
